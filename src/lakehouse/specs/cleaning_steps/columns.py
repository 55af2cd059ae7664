"""Cleaning steps that add, replace, rename, drop or retype columns."""

from __future__ import annotations

import datetime as dt
from functools import reduce
from typing import Annotated, Any, Literal

from pydantic import Field
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.specs.base import ColumnType, Spec
from lakehouse.specs.row_checks.common import parse_with_formats
from lakehouse.specs.steps import Sample, cleaning_step
from lakehouse.sql import column, ident


def adding(columns: list[str], targets: dict[str, Any]) -> list[str]:
    """The columns after a step that sets `targets`: the new ones come last, in the order written."""
    return columns + [c for c in targets if c not in columns]


@cleaning_step("fill_null", argument="`{column: value}`", does="replace null by the value (cast to the column type)",
               example="- fill_null: {discount_percent: 0.0}",
               sample=Sample("discount_percent double", [{"discount_percent": None}, {"discount_percent": 5.0}],
                             [{"discount_percent": 0.0}, {"discount_percent": 5.0}]))
def fill_null(df: DataFrame, *, fill_null: dict[str, Any]) -> DataFrame:
    return df.withColumns({c: F.coalesce(column(c), F.lit(v).cast(df.schema[c].dataType))
                           for c, v in fill_null.items()})


@cleaning_step("derive", argument="`{new_column: SQL expression}`",
               does="add or replace a column; later entries may use earlier ones",
               example='- derive: {net: "qty * price"}', leaves=adding,
               sample=Sample("qty int, price double", [{"qty": 3, "price": 2.5}],
                             [{"qty": 3, "price": 2.5, "net": 7.5}]))
def derive(df: DataFrame, *, derive: dict[str, str]) -> DataFrame:
    return reduce(lambda acc, kv: acc.withColumn(kv[0], F.expr(kv[1])), derive.items(), df)


@cleaning_step("rename", argument="`{old: new}`", does="rename columns", example="- rename: {cust: customer_id}",
               leaves=lambda columns, mapping: [mapping.get(c, c) for c in columns],
               sample=Sample("cust string", [{"cust": "C1"}], [{"customer_id": "C1"}]))
def rename(df: DataFrame, *, rename: dict[str, str]) -> DataFrame:
    return df.withColumnsRenamed(rename)


@cleaning_step("drop", argument="list of columns", does="remove columns", example="- drop: [pricing]",
               leaves=lambda columns, dropped: [c for c in columns if c not in dropped],
               sample=Sample("id string, pricing string", [{"id": "P1", "pricing": "x"}], [{"id": "P1"}]))
def drop(df: DataFrame, *, drop: list[str]) -> DataFrame:
    return df.drop(*drop)


@cleaning_step("cast", argument="`{column: type}`",
               does="change a column's type (a value that does not fit becomes null; use `castable` or the schema cast "
                    "to catch it)", example="- cast: {score: double}",
               sample=Sample("score string", [{"score": "1.5"}, {"score": "n/a"}], [{"score": 1.5}, {"score": None}]))
def cast(df: DataFrame, *, cast: dict[str, ColumnType]) -> DataFrame:
    return df.withColumns({c: column(c).cast(t) for c, t in cast.items()})


@cleaning_step("coalesce", argument="`{target: [SQL expressions]}`", does="the first non-null of the expressions",
               example="- coalesce: {contact: [email, phone, \"'none'\"]}", leaves=adding,
               sample=Sample("email string, phone string", [{"email": None, "phone": "+15550100"},
                                                            {"email": None, "phone": None}],
                             [{"email": None, "phone": "+15550100", "contact": "+15550100"},
                              {"email": None, "phone": None, "contact": "none"}]))
def coalesce(df: DataFrame, *, coalesce: Annotated[dict[str, list[str]], Field(
        description="target: [SQL expressions tried in order]")]) -> DataFrame:
    return df.withColumns({c: F.coalesce(*[F.expr(e) for e in exprs]) for c, exprs in coalesce.items()})


class ParseSpec(Spec):
    type: Literal["date", "timestamp"] = "timestamp"
    formats: list[str] = Field(min_length=1)


@cleaning_step("parse_dates", argument="`{column: {type: date\\|timestamp, formats: [...]}}`",
               does="parse text with Spark datetime patterns, first match wins; unparseable → null (declare the column "
                    "as `string` in `schema` and pair with a `parseable` check)",
               example='- parse_dates: {born: {type: date, formats: ["dd.MM.yyyy"]}}',
               sample=Sample("born string", [{"born": "24.12.1990"}, {"born": "1990-12-24"}],
                             [{"born": dt.date(1990, 12, 24)}, {"born": None}]))
def parse_dates(df: DataFrame, *, parse_dates: dict[str, ParseSpec]) -> DataFrame:
    def parse(c: str, spec: ParseSpec) -> Column:
        parsed = F.expr(parse_with_formats(ident(c), spec.formats))
        return F.to_date(parsed) if spec.type == "date" else parsed

    return df.withColumns({c: parse(c, spec) for c, spec in parse_dates.items()})
