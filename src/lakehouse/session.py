"""The SparkSession the jobs use: UTC, Parquet timestamps delta-rs can read, Delta configured when present."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


# Spark compiles every query's operators and expressions to Java bytecode (whole-stage code generation) and the
# JIT compiles that again: a fixed cost of a few hundred milliseconds per new query shape, which pays off per
# row. A stage whose inputs are small spends more time compiling than computing, so it evaluates interpreted
# (Spark's own fallback path, the same results). Measured here (spark-submit, local[2]): a week of 7 small days
# 31-32 s -> 28 s interpreted; a day of 1M sales rows 53 s -> 63 s interpreted, hence the size limit.
INTERPRETED_CONF = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
INTERPRETED_MAX_BYTES = 4 * 2**20  # input (files on disk: raw files and table data) a stage interprets


def interpreted_max_bytes() -> int:
    """The input size up to which a stage runs interpreted (LAKEHOUSE_INTERPRETED_BYTES; 0: never)."""
    text = os.environ.get("LAKEHOUSE_INTERPRETED_BYTES", "").strip()
    try:
        limit = int(text) if text else INTERPRETED_MAX_BYTES
    except ValueError:
        limit = -1
    if limit < 0:
        raise SettingsError(f"LAKEHOUSE_INTERPRETED_BYTES={text!r}: expected a number of bytes (0: never interpret)")
    return limit


# sessions inside an interpreted block: id(session) -> (blocks open, the session's own settings to restore)
_INTERPRETING: dict[int, tuple[int, dict[str, str | None]]] = {}
_INTERPRETING_LOCK = threading.Lock()


@contextmanager
def evaluation_for(spark: SparkSession, input_bytes: int | None) -> Iterator[bool]:
    """Run the block's queries interpreted when `input_bytes` (None: unknown) is at most the limit; the session's
    own settings are back as they were once the last such block on the session ends (jobs in several threads of
    one session share it: while any of them interprets, all do). Yields whether it interprets."""
    limit = interpreted_max_bytes()
    if input_bytes is None or limit == 0 or input_bytes > limit:
        yield False
        return
    with _INTERPRETING_LOCK:
        count, saved = _INTERPRETING.get(id(spark), (0, {}))
        if count == 0:
            saved = {key: spark.conf.get(key, None) for key in INTERPRETED_CONF}
            for key, value in INTERPRETED_CONF.items():
                spark.conf.set(key, value)
        _INTERPRETING[id(spark)] = (count + 1, saved)
    try:
        yield True
    finally:
        with _INTERPRETING_LOCK:
            count, saved = _INTERPRETING.pop(id(spark))
            if count > 1:
                _INTERPRETING[id(spark)] = (count - 1, saved)
            else:
                for key, before in saved.items():
                    if before is None:
                        spark.conf.unset(key)
                    else:
                        spark.conf.set(key, before)
