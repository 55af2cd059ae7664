"""Small DataFrame helpers shared by the stages."""

from __future__ import annotations

import os
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import types as T


def one_row(df: DataFrame) -> Row:
    """The row of a query that returns exactly one (a global aggregate): an error if there is none."""
    row = df.first()
    if row is None:
        raise RuntimeError("an aggregate query returned no row")
    return row


def empty_frame(spark: SparkSession, schema: T.StructType) -> DataFrame:
    """An empty DataFrame of `schema`, built in the JVM as a local relation (PySpark's createDataFrame([], schema)
    goes through an RDD and costs a tenth of a second each time)."""
    jspark: Any = spark._jsparkSession
    jvm: Any = spark.sparkContext._jvm
    jschema = jspark.parseDataType(schema.json())
    return DataFrame(jspark.createDataFrame(jvm.java.util.ArrayList(), jschema), spark)


# a frame Spark's optimizer estimates (before it runs) under this size is small: the rust engine hands it to
# delta-rs as Arrow in memory, and resolving one row per key ranks all its rows at once. The estimate of a raw
# scan is the files' size on disk, so a compressed file can hold ten times more: kept low, a small frame stays
# small in the driver's memory whatever the estimate missed.
# LAKEHOUSE_SMALL_FRAME_BYTES sets it (-1: every frame is large, as the tests of the large-frame paths do)
SMALL_FRAME_BYTES = int(os.environ.get("LAKEHOUSE_SMALL_FRAME_BYTES") or 4 * 2**20)


def estimated_bytes(df: DataFrame) -> int | None:
    """Spark's estimate of the frame's size, from its optimized plan (no job runs); None when it has none."""
    try:
        return int(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes())
    except Exception:  # a plan without statistics: treated as large
        return None


def is_small(df: DataFrame) -> bool:
    """Whether Spark's estimate of the frame is under SMALL_FRAME_BYTES."""
    size = estimated_bytes(df)
    return size is not None and size <= SMALL_FRAME_BYTES
