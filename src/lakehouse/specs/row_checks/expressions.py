"""Row checks written as SQL: a comparison of two expressions, a boolean condition."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from lakehouse.specs.vocabulary import CheckContext, Failing, row_check
from lakehouse.sql import literal


@row_check("compare", fails_when="the comparison `left` `op` `right` (SQL expressions) is false",
           examples=['{check: compare, left: start_date, op: "<=", right: end_date}'], sql=("left", "right"))
def compare(ctx: CheckContext, *, left: str, op: Literal["<", "<=", ">", ">=", "=", "!="], right: str) -> Failing:
    return Failing(f"NOT (({left}) {op} ({right}))", literal(f"{left} {op} {right} does not hold"))


@row_check("expression", "sql", fails_when="the condition `expression` (SQL boolean) is false",
           examples=["{check: expression, expression: \"qty > 0 OR type = 'return'\"}"], sql=("expression",))
def expression(ctx: CheckContext, *, expression: Annotated[str, Field(
        description="SQL boolean condition that valid rows satisfy")]) -> Failing:
    return Failing(f"NOT ({expression})", literal(f"{expression} does not hold"))
