"""The SparkSession the jobs use: UTC, Parquet timestamps delta-rs can read, Delta configured when present."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.settings import Settings, SettingsError
from lakehouse.telemetry.logs import json_mode

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # micros with UTC adjustment is the Parquet encoding Delta uses for timestamp; INT96 would not round-trip
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    # let AQE coalesce the partitions of persisted DataFrames too; without it a small day's cached batch keeps
    # 200 shuffle partitions and every staging write becomes 200 tiny files
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.ansi.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def under_spark_submit() -> bool:
    """True when spark-submit started the JVM this Python process talks to."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT")) and SparkSession.getActiveSession() is None


def _submitted_jars() -> list[str]:
    """The jars spark-submit put on the classpath (`--jars`), from the JVM's system properties."""
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        return []
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connect to spark-submit's JVM to read its settings
    return [j for j in SparkConf().get("spark.jars", "").split(",") if j]


def build_session(settings: Settings, app_name: str = "lakehouse", extra: dict[str, str] | None = None
                  ) -> SparkSession:
    """Get or create the session. Settings already given by spark-submit or the operator are kept."""
    builder = SparkSession.builder.appName(app_name)
    conf = dict(BASE_CONF)
    submitted = _submitted_jars()
    if settings.spark_jars:
        if under_spark_submit() and not any("delta-spark" in j for j in submitted):
            raise SettingsError(
                "LAKEHOUSE_SPARK_JARS is set, but under spark-submit the driver's classpath is fixed before this "
                "code runs; give the jars to spark-submit itself: spark-submit --jars "
                f"{','.join(settings.spark_jars)} spark_jobs/daily_aggregation.py ...")
        conf["spark.jars"] = ",".join(dict.fromkeys([*submitted, *settings.spark_jars]))
    if settings.spark_jars or settings.engine == "jvm" or any("delta-spark" in j for j in submitted):
        conf["spark.sql.extensions"] = DELTA_EXTENSION
        conf["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
        # tables stay on the basic protocol that delta-rs reads and writes too
        conf["spark.databricks.delta.properties.defaults.enableDeletionVectors"] = "false"
    json_config = Path(settings.conf_dir) / "spark" / "log4j2-json.properties"
    if json_mode() and json_config.is_file():  # Spark's own lines as JSON too (when this process starts the JVM)
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={json_config.resolve()}"
    conf.update(extra or {})
    conf.update(settings.spark_conf)
    active = SparkSession.getActiveSession()
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if active is not None:
        # a session created earlier (tests, notebooks) keeps its static settings; the SQL ones still apply
        for key, value in conf.items():
            if key.startswith("spark.sql.") and key not in ("spark.sql.extensions",) \
                    and not key.startswith("spark.sql.catalog"):
                spark.conf.set(key, value)
    spark.sparkContext.setLogLevel("INFO" if os.environ.get("LAKEHOUSE_VERBOSE") == "1" else "WARN")
    _quiet(spark, "org.apache.spark.sql.catalyst.csv.CSVHeaderChecker")
    return spark


def _quiet(spark: SparkSession, logger: str) -> None:
    """Errors only from `logger`: the CSV reader maps each file's header itself and reads columns by position,
    which Spark's header checker would report as a mismatch for every file."""
    try:
        jvm: Any = spark.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            logger, jvm.org.apache.logging.log4j.Level.ERROR)
    except Exception:  # a JVM without log4j-core: the warning stays
        pass
