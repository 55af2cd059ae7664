"""Which engine a lake gets: `auto` takes jvm (delta-spark) when Delta's classes load in the Spark session, else
rust (delta-rs). The one module that knows both engines; the contract (`tables.engine`) knows neither."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from lakehouse.errors import SettingsError
from lakehouse.storage import is_remote, spark_reads
from lakehouse.tables.engine import TableEngine
from lakehouse.tables.paths import LakeLayout, local_staging


def jvm_delta_available(spark: SparkSession) -> bool:
    """True when Delta's JVM classes load in this session and its SQL extension is configured."""
    try:
        jvm: Any = spark.sparkContext._jvm
        loader = jvm.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName("io.delta.tables.DeltaTable", False, loader)
    except Exception:  # py4j raises a Py4JJavaError wrapping ClassNotFoundException
        return False
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    return "DeltaSparkSessionExtension" in extensions


def select_engine(spark: SparkSession, layout: LakeLayout, choice: str = "auto") -> TableEngine:
    """`auto` takes jvm when Delta's classes load in the session, else rust."""
    if choice not in ("auto", "jvm", "rust"):
        raise SettingsError(f"unknown engine {choice!r}: expected auto, jvm or rust")
    if is_remote(layout.root) and not spark_reads(spark, layout.root):
        # Spark has no connector for the lake's store (the embedded default has no S3A): delta-rs writes the
        # tables, and Spark's scratch Parquet stays on local disk
        if choice == "jvm":
            raise SettingsError(
                f"LAKEHOUSE_ENGINE=jvm needs Spark's S3 connector (hadoop-aws) for the lake root {layout.root}; "
                "add its jars with LAKEHOUSE_SPARK_JARS, or use the rust engine")
        if layout.staging_root is None:
            layout = LakeLayout(layout.root, local_staging(layout.root))
        elif is_remote(layout.staging_root):
            raise SettingsError(f"LAKEHOUSE_STAGING={layout.staging_root}: Spark has no connector for that store "
                                "here and writes its intermediate Parquet there; leave it unset (local) or give "
                                "a local folder")
        choice = "rust"
    if choice in ("auto", "jvm") and jvm_delta_available(spark):
        from lakehouse.tables.jvm import JvmEngine

        return JvmEngine(spark, layout)
    if choice == "jvm":
        raise SettingsError(
            "LAKEHOUSE_ENGINE=jvm but Delta's JVM classes are not on Spark's classpath; point "
            "LAKEHOUSE_SPARK_JARS at delta-spark_2.13-4.0.x.jar and delta-storage-4.0.x.jar, or use rust")
    from lakehouse.tables.rust import RustEngine

    return RustEngine(spark, layout)
