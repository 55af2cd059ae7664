"""The failure record every rule writes: array<struct<check, column, message, criticality>>."""

from __future__ import annotations

from pyspark.sql import types as T

from lakehouse.sql import literal

CAST_ERRORS = "_cast_errors"
# with on_type_mismatch: rescue, the values that did not fit their column: column -> the value as read
RESCUED = "_rescued_data"
ERROR_TYPE = T.ArrayType(T.StructType([
    T.StructField("check", T.StringType()), T.StructField("column", T.StringType()),
    T.StructField("message", T.StringType()), T.StructField("criticality", T.StringType())]))


def failure_record(check: str, column: str | None, message: str, criticality: str) -> str:
    """SQL: a one-element failure array; `message` is SQL text (a string expression)."""
    col = literal(column) if column is not None else "CAST(NULL AS STRING)"
    return (f"array(named_struct('check', {literal(check)}, 'column', {col}, 'message', {message}, "
            f"'criticality', {literal(criticality)}))")


def failure_list(failed: str, check: str, column: str | None, message: str, criticality: str) -> str:
    """SQL: the failure record when `failed` holds, else an empty array. Arrays concatenated, not a filter()
    over nulls: higher-order functions are not code-generated, and with twenty checks they would cost more
    than the checks themselves."""
    return f"CASE WHEN {failed} THEN {failure_record(check, column, message, criticality)} ELSE array() END"
