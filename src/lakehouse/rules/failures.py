"""The failure record every rule writes: array<struct<check, column, message, criticality>>."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

CAST_ERRORS = "_cast_errors"
ERROR_TYPE = T.ArrayType(T.StructType([
    T.StructField("check", T.StringType()), T.StructField("column", T.StringType()),
    T.StructField("message", T.StringType()), T.StructField("criticality", T.StringType())]))


def failure_list(failed: Column, check: str, column: Column, message: Column, criticality: str) -> Column:
    # arrays concatenated, not a filter() over nulls: higher-order functions are not code-generated, and
    # with twenty checks they would cost more than the checks themselves
    item = F.struct(F.lit(check).alias("check"), column.alias("column"), message.alias("message"),
                    F.lit(criticality).alias("criticality"))
    return F.when(failed, F.array(item)).otherwise(F.array())
