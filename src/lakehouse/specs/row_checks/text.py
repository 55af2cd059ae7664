"""Row checks on a text's shape: a pattern, an email address, a phone number, a date format, a type."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from lakehouse.specs.base import ColumnType
from lakehouse.specs.row_checks.common import matches, parse_with_formats, value_message
from lakehouse.specs.vocabulary import CheckContext, Failing, row_check
from lakehouse.sql import ident, literal

# local@label.label...tld, the tld letters only. \p{Alnum} and \p{Alpha} are ASCII-only in Java regex (as
# [A-Za-z0-9] and [A-Za-z]) and test a character with one table lookup instead of a chain of ranges: about half
# the time per value. \z, as `$` would accept a trailing newline.
EMAIL_PATTERN = r"^[\p{Alnum}._%+-]+@(?:[\p{Alnum}-]+\.)+\p{Alpha}{2,}\z"
PHONE_PATTERN = r"^\+?[0-9]{7,15}$"
PHONE_SEPARATORS = r"[\s().-]"


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from exc
    return pattern


@row_check("regex", fails_when="no match (`pattern`: a Java regex, partial match; anchor with `^…$`)",
           examples=['{check: regex, column: id, pattern: "^C\\\\d+$"}'])
def regex(column: str, ctx: CheckContext, *, pattern: Annotated[str, AfterValidator(_compiles)]) -> Failing:
    return Failing(f"NOT ({matches(f'CAST({ident(column)} AS STRING)', pattern)})",
                   value_message(column, f"does not match {pattern}"))


@row_check("email", fails_when="not `local@label.….tld`: local part of ASCII letters, digits and `._%+-`; one `@`; "
                               "one or more dot-terminated labels of ASCII letters, digits and `-`; a tld of two or "
                               "more ASCII letters; nothing after it (not even a newline)",
           examples=["{check: email, column: email}"])
def email(column: str, ctx: CheckContext) -> Failing:
    return Failing(f"NOT ({matches(ident(column), EMAIL_PATTERN)})",
                   value_message(column, "is not a valid email address"))


@row_check("phone", fails_when="not 7–15 digits with an optional leading `+` once spaces, `()`, `.` and `-` are "
                               "removed", examples=["{check: phone, column: phone}"])
def phone(column: str, ctx: CheckContext) -> Failing:
    digits = f"regexp_replace({ident(column)}, {literal(PHONE_SEPARATORS)}, '')"
    return Failing(f"NOT ({matches(digits, PHONE_PATTERN)})", value_message(column, "is not a valid phone number"))


@row_check("parseable", fails_when="non-null text matching none of the Spark datetime patterns of `formats`",
           examples=['{check: parseable, column: born, type: date, formats: ["dd/MM/yyyy"]}'])
def parseable(column: str, ctx: CheckContext, *, type: Literal["date", "timestamp"] = "timestamp",  # noqa: A002
              formats: Annotated[list[str], Field(min_length=1, description="Spark datetime patterns, tried in order")]
              ) -> Failing:
    return Failing(f"{ident(column)} IS NOT NULL AND {parse_with_formats(ident(column), formats)} IS NULL",
                   value_message(column, f"does not match the format{'s' if len(formats) > 1 else ''} "
                                         + ", ".join(formats)))


@row_check("castable", fails_when="non-null value that `try_cast` cannot convert to `type` (a schema type)",
           examples=['{check: castable, column: amount, type: "decimal(8,2)"}'])
def castable(column: str, ctx: CheckContext, *, type: ColumnType) -> Failing:  # noqa: A002
    return Failing(f"{ident(column)} IS NOT NULL AND try_cast({ident(column)} AS {type}) IS NULL",
                   value_message(column, f"cannot be cast to {type}"))
