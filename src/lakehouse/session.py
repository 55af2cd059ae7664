"""The SparkSession the jobs use: UTC, Parquet timestamps delta-rs can read, Delta configured when present."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from pyspark.sql import SparkSession

from lakehouse.settings import Settings, SettingsError
from lakehouse.telemetry.logs import json_mode

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
# Delta replays a table's log (to know its files) over this many tasks: 50 by default, made for large clusters
# and tables of 100,000s of files. This lake's tables hold hundreds to thousands of files, and delta-spark replays
# a log for every write, MERGE and read of a changed table: on two cores, 50 tasks cost a second each time.
# Measured, local[2], 10 small MERGEs and appends: 40.6 s with 50, 19.6-24.4 s with 2, 20.7-21.8 s with 1.
SNAPSHOT_PARTITIONS = "spark.databricks.delta.snapshotPartitions"

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
    for key, value in s3a_from_aws_env(os.environ).items():
        if key not in settings.spark_conf:
            conf[key] = value
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
    if "spark.sql.extensions" in conf and spark.conf.get(SNAPSHOT_PARTITIONS, None) is None:
        # one task per core the session has (a user's own setting wins)
        spark.conf.set(SNAPSHOT_PARTITIONS, str(max(1, spark.sparkContext.defaultParallelism)))
    spark.sparkContext.setLogLevel("INFO" if os.environ.get("LAKEHOUSE_VERBOSE") == "1" else "WARN")
    _quiet(spark, "org.apache.spark.sql.catalyst.csv.CSVHeaderChecker")
    return spark


def s3a_from_aws_env(env: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """Spark's S3A connector configured from the same standard AWS variables boto3 and delta-rs read, so one
    environment serves both engines: an S3-compatible endpoint (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL: path-style
    requests, TLS as its scheme says) and the region. Credentials are not copied: S3A's default provider chain
    reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, a web identity token or the instance
    role itself. A key set in LAKEHOUSE_SPARK_CONF wins over these."""
    out: dict[str, str] = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        out["spark.hadoop.fs.s3a.endpoint"] = endpoint
        out["spark.hadoop.fs.s3a.path.style.access"] = "true"
        out["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https://")).lower()
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        out["spark.hadoop.fs.s3a.endpoint.region"] = region
    return out


def _quiet(spark: SparkSession, logger: str) -> None:
    """Errors only from `logger`: the CSV reader maps each file's header itself and reads columns by position,
    which Spark's header checker would report as a mismatch for every file."""
    try:
        jvm: Any = spark.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            logger, jvm.org.apache.logging.log4j.Level.ERROR)
    except Exception:  # a JVM without log4j-core: the warning stays
        pass


# Settings for a stage whose input is small. Spark's defaults are made for data that takes a while to compute:
# - it compiles every query's operators and expressions to Java (whole-stage code generation), and the JIT compiles
#   that again: a few hundred milliseconds per new query shape, which pays off per row;
# - adaptive execution re-plans a query after each of its shuffle stages, each stage a Spark job of its own.
# On a small input both cost more than they save: such a stage evaluates interpreted (Spark's own fallback path,
# the same results), planned once, over a few shuffle partitions. Measured here (spark-submit, local[2], a week of
# 7 small days, back to back on a noisy machine): 31-32 s with the defaults, 28-30 s interpreted, 28 s interpreted
# and planned once (26 s in `bench/versus.py`). Interpreted, a day of 1M sales rows takes 63 s instead
# of 53 s, hence the size limit; with it, that day's small datasets take the small path and the large ones do not:
# 59/68 s -> 54/64 s (days 1/2).
SMALL_INPUT_CONF = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
                    "spark.sql.adaptive.enabled": "false"}
SMALL_INPUT_PARTITIONS = 4  # shuffle partitions of a small stage (at most the cores Spark has)
SMALL_INPUT_BYTES = 4 * 2**20  # a stage's input (files on disk: raw files and table data) that is small


def small_input_bytes() -> int:
    """The input size up to which a stage takes the small path (LAKEHOUSE_SMALL_INPUT_BYTES; 0: never)."""
    text = os.environ.get("LAKEHOUSE_SMALL_INPUT_BYTES", "").strip()
    try:
        limit = int(text) if text else SMALL_INPUT_BYTES
    except ValueError:
        limit = -1
    if limit < 0:
        raise SettingsError(f"LAKEHOUSE_SMALL_INPUT_BYTES={text!r}: expected a number of bytes (0: never the small path)")
    return limit


@dataclass
class _Sharing:
    """Who works on one session: the threads inside a run (`working`, with their nesting depth), the small blocks
    open and the session's own settings to restore when the last one ends."""

    workers: dict[int, int] = field(default_factory=dict)
    small: int = 0
    saved: dict[str, str | None] = field(default_factory=dict)


_SESSIONS: dict[int, _Sharing] = {}  # id(session) -> its sharing
_CHANGE = threading.Condition()


def _sharing(spark: SparkSession) -> _Sharing:
    """The session's sharing (under _CHANGE), made when nobody works on it."""
    return _SESSIONS.setdefault(id(spark), _Sharing())


def _forget_if_idle(spark: SparkSession, state: _Sharing) -> None:
    """Drop the session's sharing once nobody works on it and no small block is open (not a newer one)."""
    if not state.workers and not state.small and _SESSIONS.get(id(spark)) is state:
        del _SESSIONS[id(spark)]


@contextmanager
def working(spark: SparkSession) -> Iterator[None]:
    """The block is a run on `spark` in this thread. The small path changes session-wide settings, so it is taken
    only while one thread works on the session: a second thread waits for an open small block to end before it
    starts (no query of its own sees the settings change under it), and while two work, neither takes it."""
    me = threading.get_ident()
    with _CHANGE:
        if me not in _sharing(spark).workers:  # a run inside a run goes straight in
            _CHANGE.wait_for(lambda: _sharing(spark).small == 0)
        state = _sharing(spark)  # after the wait: the one in force now
        state.workers[me] = state.workers.get(me, 0) + 1
    try:
        yield
    finally:
        with _CHANGE:
            state.workers[me] -= 1
            if not state.workers[me]:
                del state.workers[me]
            _forget_if_idle(spark, state)
            _CHANGE.notify_all()


class _Runs(Protocol):
    @property
    def engine(self) -> Any: ...  # a table engine: its `spark` is the session the run works on


S = TypeVar("S", bound=_Runs)
R = TypeVar("R")
P = ParamSpec("P")


def a_run(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """The method is a run on its object's session (`working`): the small path keeps to one thread at a time."""

    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with working(self.engine.spark):
            return method(self, *args, **kwargs)

    functools.update_wrapper(run, method)
    return run


@contextmanager
def evaluation_for(spark: SparkSession, input_bytes: int | None) -> Iterator[bool]:
    """Run the block's queries with SMALL_INPUT_CONF when `input_bytes` (None: unknown) is at most the limit and no
    other thread works on the session (see `working`); the session's own settings are back as they were once the
    block ends. Yields whether it is small."""
    limit = small_input_bytes()
    if input_bytes is None or limit == 0 or input_bytes > limit:
        yield False
        return
    me = threading.get_ident()
    with _CHANGE:
        state = _sharing(spark)
        if set(state.workers) - {me}:
            small = False
        else:
            small = True
            if state.small == 0:
                conf = {**SMALL_INPUT_CONF, "spark.sql.shuffle.partitions": str(
                    max(1, min(spark.sparkContext.defaultParallelism, SMALL_INPUT_PARTITIONS)))}
                state.saved = {key: spark.conf.get(key, None) for key in conf}
                for key, value in conf.items():
                    spark.conf.set(key, value)
            state.small += 1
    try:
        yield small
    finally:
        with _CHANGE:
            if small:
                state.small -= 1
                if state.small == 0:
                    for key, before in state.saved.items():
                        if before is None:
                            spark.conf.unset(key)
                        else:
                            spark.conf.set(key, before)
            _forget_if_idle(spark, state)
            _CHANGE.notify_all()
