"""Cast the raw (text) columns to the spec's types, recording every value that does not fit."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.rules.failures import CAST_ERRORS, ERROR_TYPE, failure_list
from lakehouse.specs.models import DatasetSpec
from lakehouse.specs.names import snake_case


def _is_text(dtype: T.DataType) -> bool:
    return isinstance(dtype, T.StringType)


def standardize_column_names(df: DataFrame) -> DataFrame:
    """snake_case every column that is not technical (leading underscore)."""
    return df.withColumnsRenamed({c: snake_case(c) for c in df.columns if not c.startswith("_")
                                  and snake_case(c) != c})


def conform(spec: DatasetSpec, extra_columns: list[str] | None = None):
    """DataFrame -> DataFrame: declared columns cast to their types (missing ones added as null), the
    `extra_columns` kept as they are, lineage kept, and `_cast_errors` listing each value that failed its cast."""

    def apply(df: DataFrame) -> DataFrame:
        if spec.standardizes_names():
            df = standardize_column_names(df)
        typed: list[Column] = []
        failures: list[Column] = []
        for field in spec.source_schema().fields:
            if field.name not in df.columns:
                typed.append(F.lit(None).cast(field.dataType).alias(field.name))
                continue
            raw = F.col(f"`{field.name}`")
            if df.schema[field.name].dataType == field.dataType:
                typed.append(raw.alias(field.name))
                continue
            cast = raw.cast(field.dataType)
            typed.append(cast.alias(field.name))
            # an empty or blank text value is a null, not a type error
            present = raw.isNotNull()
            if _is_text(df.schema[field.name].dataType):
                present = present & (F.trim(raw) != "")
            failures.append(failure_list(
                present & cast.isNull(), "type_mismatch", F.lit(field.name),
                F.concat(F.lit("value "), raw.cast("string"), F.lit(f" is not a valid {field.dataType.simpleString()}")),
                "error"))
        rest = [F.col(f"`{c}`") for c in df.columns if c not in spec.columns and
                (c.startswith("_") or c in (extra_columns or []))]
        errors = F.concat(*failures) if failures else F.array().cast(ERROR_TYPE)
        return df.select(*typed, *rest, errors.alias(CAST_ERRORS))

    return apply
