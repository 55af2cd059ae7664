"""Cast the raw (text) columns to the spec's types, recording every value that does not fit."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from lakehouse.rules.failures import CAST_ERRORS, ERROR_TYPE, RESCUED, failure_list
from lakehouse.sources.columns import READ_ERRORS, read_error_value
from lakehouse.specs.models import DatasetSpec
from lakehouse.specs.names import snake_case
from lakehouse.sql import all_of, ident, literal, sql_type

_NO_MAP = "CAST(map() AS MAP<STRING, STRING>)"


def standardize_column_names(df: DataFrame) -> DataFrame:
    """snake_case every column that is not technical (leading underscore)."""
    return df.withColumnsRenamed({c: snake_case(c) for c in df.columns if not c.startswith("_")
                                  and snake_case(c) != c})


def conform(spec: DatasetSpec, extra_columns: list[str] | None = None) -> Callable[[DataFrame], DataFrame]:
    """DataFrame -> DataFrame: declared columns cast to their types (missing ones added as null), the
    `extra_columns` kept as they are, lineage kept, and `_cast_errors` listing each value that failed its cast.
    With `on_type_mismatch: rescue` such a failure is a warning, not an error, and `_rescued_data` (a map, null
    when nothing was rescued) keeps each value that did not fit, as read, under its column's name."""
    rescue = spec.on_type_mismatch == "rescue"
    criticality = "warn" if rescue else "error"

    def apply(df: DataFrame) -> DataFrame:
        if spec.standardizes_names():
            df = standardize_column_names(df)
        have = {f.name: f.dataType for f in df.schema.fields}
        typed: list[str] = []
        failures: list[str] = []
        rescued: list[str] = []
        for field in spec.source_schema().fields:
            name, target = ident(field.name), sql_type(field.dataType)
            if field.name not in have:
                typed.append(f"CAST(NULL AS {target}) AS {name}")
                continue
            if have[field.name] == field.dataType:
                typed.append(name)
                continue
            cast = f"CAST({name} AS {target})"
            typed.append(f"{cast} AS {name}")
            # an empty or blank text value is a null, not a type error
            present = f"{name} IS NOT NULL"
            if isinstance(have[field.name], T.StringType):
                present = all_of(present, f"trim({name}) != ''")
            message = (f"concat('value ', CAST({name} AS STRING), "
                       f"{literal(f' is not a valid {field.dataType.simpleString()}')})")
            failed = all_of(present, f"{cast} IS NULL")
            failures.append(failure_list(failed, "type_mismatch", field.name, message, criticality))
            rescued.append(f"CASE WHEN {failed} THEN map({literal(field.name)}, CAST({name} AS STRING)) "
                           f"ELSE {_NO_MAP} END")
        if READ_ERRORS in have:
            # values the reader could not take as they came (an object where a scalar is declared, a Parquet
            # value that does not fit the declared type): null in the column, the reason recorded here
            entry = ("named_struct('check', 'type_mismatch', 'column', e.column, 'message', e.message, "
                     f"'criticality', {literal(criticality)})")
            any_read_error = f"size({ident(READ_ERRORS)}) > 0"
            failures.insert(0, f"CASE WHEN {any_read_error} THEN "
                               f"transform({ident(READ_ERRORS)}, e -> {entry}) ELSE array() END")
            rescued.insert(0, f"CASE WHEN {any_read_error} THEN map_from_entries(transform({ident(READ_ERRORS)}, "
                              f"e -> struct(e.column, {read_error_value('e')}))) ELSE {_NO_MAP} END")
        rest = [ident(c) for c in have if c not in spec.columns and c != READ_ERRORS and
                (c.startswith("_") or c in (extra_columns or []))]
        errors = f"concat({', '.join(failures)})" if failures else "array()"
        kept = [f"CAST({errors} AS {sql_type(ERROR_TYPE)}) AS {ident(CAST_ERRORS)}"]
        if rescue:
            values = f"map_concat({', '.join(rescued)})" if rescued else _NO_MAP
            kept.append(f"CASE WHEN size({values}) > 0 THEN {values} END AS {ident(RESCUED)}")
        return df.selectExpr(*typed, *rest, *kept)

    return apply
