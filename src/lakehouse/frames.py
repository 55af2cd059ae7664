"""Small DataFrame helpers shared by the stages."""

from __future__ import annotations

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
