"""Cast the raw (text) columns to the spec's types, recording every value that does not fit."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.specs.models import DatasetSpec
from lakehouse.specs.names import snake_case

CAST_ERRORS = "_cast_errors"


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
            failures.append(F.when(present & cast.isNull(), F.struct(
                F.lit("type_mismatch").alias("check"), F.lit(field.name).alias("column"),
                F.format_string(f"value %s is not a valid {field.dataType.simpleString()}",
                                raw.cast("string")).alias("message"),
                F.lit("error").alias("criticality"))))
        rest = [F.col(f"`{c}`") for c in df.columns if c not in spec.columns and
                (c.startswith("_") or c in (extra_columns or []))]
        errors = F.filter(F.array(*failures), lambda e: e.isNotNull()) if failures else F.array()
        return df.select(*typed, *rest, errors.alias(CAST_ERRORS))

    return apply
