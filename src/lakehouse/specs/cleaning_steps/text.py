"""Cleaning steps on text values: spaces, case, a regex replacement; and the raw column names' spelling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import Field
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.specs.steps import Sample, cleaning_step
from lakehouse.sql import column


def each(df: DataFrame, columns: list[str], fn: Callable[[Column], Column]) -> DataFrame:
    """`fn` applied to each of the columns."""
    return df.withColumns({c: fn(column(c)) for c in columns})


@cleaning_step("trim", argument="list of columns", does="strip leading/trailing spaces",
               example="- trim: [store_id]",
               sample=Sample("store_id string", [{"store_id": "  S1 "}, {"store_id": None}],
                             [{"store_id": "S1"}, {"store_id": None}]))
def trim(df: DataFrame, *, trim: list[str]) -> DataFrame:
    return each(df, trim, F.trim)


@cleaning_step("upper", argument="list of columns", does="upper case", example="- upper: [country]",
               sample=Sample("country string", [{"country": "de"}], [{"country": "DE"}]))
def upper(df: DataFrame, *, upper: list[str]) -> DataFrame:
    return each(df, upper, F.upper)


@cleaning_step("lower", argument="list of columns", does="lower case", example="- lower: [email]",
               sample=Sample("email string", [{"email": "Ann@Example.ORG"}], [{"email": "ann@example.org"}]))
def lower(df: DataFrame, *, lower: list[str]) -> DataFrame:
    return each(df, lower, F.lower)


@cleaning_step("title", argument="list of columns", does="capitalize each word", example="- title: [city]",
               sample=Sample("city string", [{"city": "new YORK"}], [{"city": "New York"}]))
def title(df: DataFrame, *, title: list[str]) -> DataFrame:
    return each(df, title, F.initcap)


@cleaning_step("regex_replace", argument="`{column: [pattern, replacement]}`", does="Java regex replace",
               example='- regex_replace: {phone: ["[^0-9+]", ""]}',
               sample=Sample("phone string", [{"phone": "+1 (555) 010-9999"}], [{"phone": "+15550109999"}]))
def regex_replace(df: DataFrame, *, regex_replace: Annotated[dict[str, tuple[str, str]], Field(
        description="column: [pattern, replacement]")]) -> DataFrame:
    return df.withColumns({c: F.regexp_replace(column(c), pattern, replacement)
                           for c, (pattern, replacement) in regex_replace.items()})


@cleaning_step("standardize_column_names", argument="`true`",
               does="snake_case every raw column name (`Order ID` → `order_id`, `TotalEUR` → `total_eur`); runs "
                    "**before** the typed cast wherever it is listed, so `schema` names the standardized columns",
               example="- standardize_column_names: true",
               sample=Sample("order_id string", [{"order_id": "A-1"}], [{"order_id": "A-1"}]))
def standardize_column_names(df: DataFrame, *, standardize_column_names: bool = True) -> DataFrame:
    return df  # applied to the raw columns before the typed cast (rules.conform): here the names are standard
