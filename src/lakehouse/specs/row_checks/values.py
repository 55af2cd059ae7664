"""Row checks on a column's values: presence, bounds, membership, length."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from lakehouse.specs.base import require_a_bound
from lakehouse.specs.row_checks.common import bounds_text, value_message
from lakehouse.specs.vocabulary import CheckContext, Failing, OneOrMoreColumns, row_check
from lakehouse.sql import all_of, ident, literal

Bound = float | int | str | None


@row_check("not_null", fails_when="value is null", examples=["{check: not_null, columns: [a, b]}"])
def not_null(column: str, ctx: CheckContext) -> Failing:
    return Failing(f"{ident(column)} IS NULL", literal(f"{column} is null"))


@row_check("not_empty", fails_when="null, empty or blank", examples=["{check: not_empty, column: name}"])
def not_empty(column: str, ctx: CheckContext) -> Failing:
    return Failing(f"{ident(column)} IS NULL OR trim(CAST({ident(column)} AS STRING)) = ''",
                   literal(f"{column} is empty"))


class Bounded(OneOrMoreColumns):
    """A check with optional `min` and `max`: at least one of them."""

    @model_validator(mode="after")
    def _a_bound(self) -> Self:
        require_a_bound(self, self.check)
        return self


@row_check("range", "between", fails_when="outside the bounds (`min` and/or `max`)",
           examples=["{check: range, column: quantity, min: 1, max: 1000}"], base=Bounded)
def range_check(column: str, ctx: CheckContext, *, min: Bound = None, max: Bound = None,  # noqa: A002
                inclusive: bool = True) -> Failing:
    lo, hi = (">=", "<=") if inclusive else (">", "<")
    bounds = []
    if min is not None:
        bounds.append(f"{ident(column)} {lo} {literal(min)}")
    if max is not None:
        bounds.append(f"{ident(column)} {hi} {literal(max)}")
    return Failing(f"NOT ({all_of(*bounds)})", value_message(column, bounds_text(min, max, inclusive)))


def _in(column: str, values: list[Any], inside: bool) -> Failing:
    # a null among the values would make IN null for every other value (and the check never fail); null column
    # values pass anyway, so nulls in the list are left out
    listed = [literal(v) for v in values if v is not None]
    text = "is not in the allowed set" if inside else "is in the forbidden set"
    if not listed:  # only nulls listed: nothing is allowed / nothing is forbidden
        return Failing(f"{ident(column)} IS NOT NULL" if inside else "false", value_message(column, text))
    found = f"{ident(column)} IN ({', '.join(listed)})"
    return Failing(f"NOT ({found})" if inside else found, value_message(column, text))


@row_check("in_set", fails_when="value not in the list (a null in the list is ignored: null values pass anyway)",
           examples=["{check: in_set, column: tier, values: [gold, silver]}"])
def in_set(column: str, ctx: CheckContext, *, values: Annotated[list[Any], Field(min_length=1)]) -> Failing:
    return _in(column, values, inside=True)


@row_check("not_in_set", fails_when="value in the list (nulls in the list are ignored)",
           examples=["{check: not_in_set, column: store_id, values: [TEST]}"])
def not_in_set(column: str, ctx: CheckContext, *, values: Annotated[list[Any], Field(min_length=1)]) -> Failing:
    return _in(column, values, inside=False)


def _length_outside(column: str, low: int | None, high: int | None) -> str:
    """SQL: the text length (in characters) is outside [low, high]. Counting characters walks the whole UTF-8
    value, so it is done once: with both bounds as |2n - (low + high)| > high - low; with only a maximum, the byte
    length (known without counting) settles every value of at most `high` bytes, since characters <= bytes."""
    n = f"length(CAST({ident(column)} AS STRING))"
    if low is not None and high is not None:
        return f"abs(2 * CAST({n} AS BIGINT) - {low + high}) > {high - low}"
    if low is not None:
        return f"{n} < {low}"
    if high is not None:
        return f"octet_length(CAST({ident(column)} AS STRING)) > {high} AND {n} > {high}"
    return "false"


@row_check("length", fails_when="text length in characters (not bytes) outside the bounds (`min` and/or `max`), "
                                "inclusive", examples=["{check: length, column: code, min: 2, max: 8}"], base=Bounded,
           needs=("a string column", ("string",)))
def length(column: str, ctx: CheckContext, *, min: Annotated[int | None, Field(ge=0)] = None,  # noqa: A002
           max: Annotated[int | None, Field(ge=0)] = None) -> Failing:
    return Failing(_length_outside(column, min, max),
                   value_message(column, bounds_text(min, max, unit="characters") + " long"))
