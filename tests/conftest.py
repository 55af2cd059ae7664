"""One SparkSession for the whole suite (fast settings), real Delta tables in tmp_path, engines parametrized."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lakehouse.settings import Settings
from lakehouse.tables import jvm_delta_available, select_engine
from lakehouse.tables.paths import LakeLayout

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


@pytest.fixture(scope="session")
def spark():
    from lakehouse.session import build_session

    settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "LAKEHOUSE_ENGINE"})
    session = build_session(settings, "lakehouse-tests", extra={
        "spark.master": "local[2]",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        "spark.driver.memory": "2g",
    })
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# the jvm run of a parametrized test carries the `jvm` marker: `make test-jvm` selects exactly those
ENGINES = ["rust", pytest.param("jvm", marks=pytest.mark.jvm)]
NO_JARS = ("jvm engine: Delta's JVM jars are not on Spark's classpath. Fetch them with `make jars` (needs Maven; "
           "the test targets then use jars/lib), or set LAKEHOUSE_SPARK_JARS to "
           "delta-spark_2.13-4.0.0.jar,delta-storage-4.0.0.jar")


def require_jars(what: str = NO_JARS) -> None:
    """Skip a test that needs jars which are absent, or fail it where they must be present (CI sets
    LAKEHOUSE_REQUIRE_JVM=1: there no jvm test may be skipped)."""
    if os.environ.get("LAKEHOUSE_REQUIRE_JVM") == "1":
        pytest.fail("LAKEHOUSE_REQUIRE_JVM=1, but " + what)
    pytest.skip(what)


def require_jvm(spark) -> None:
    """Skip (or, under LAKEHOUSE_REQUIRE_JVM=1, fail) unless the jvm engine can run in this session."""
    if not jvm_delta_available(spark):
        require_jars()


@pytest.fixture(params=ENGINES)
def engine(request, spark, tmp_path):
    """Each contract test runs once per engine; the jvm run is skipped where Delta's jars are absent."""
    if request.param == "jvm":
        require_jvm(spark)
    return select_engine(spark, LakeLayout(str(tmp_path / "lake")), request.param)


@pytest.fixture
def rust_engine(spark, tmp_path):
    return select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")


@pytest.fixture
def conf_copy(tmp_path) -> Path:
    """A writable copy of the shipped conf/ for tests that edit specs."""
    target = tmp_path / "conf"
    shutil.copytree(CONF, target)
    return target


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API (moto in server mode) on 127.0.0.1 for the session."""
    from tests.s3_server import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """This process talks to the test S3 server through the standard AWS variables; yields a fresh bucket."""
    import uuid

    from lakehouse.storage import s3_client
    from tests.s3_server import s3_env

    for name, value in s3_env(s3_endpoint, "test-secret-" + uuid.uuid4().hex).items():
        monkeypatch.setenv(name, value)
    bucket = "lake-" + uuid.uuid4().hex[:12]
    s3_client().create_bucket(Bucket=bucket)
    return bucket
