"""What a Delta log tells of a column's values without reading rows (TableEngine.logged_values, read by
delta-rs), on tables written by either engine, and gold's use of it: a run that finds its gold tables following
their specs starts no Spark job for it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import types as T

from lakehouse.pipeline import gold
from lakehouse.specs.loader import load_catalog
from tests.conftest import CONF

SCHEMA = T.StructType([
    T.StructField("day", T.DateType()),
    T.StructField("spec", T.StringType()),
    T.StructField("mixed", T.StringType()),
    T.StructField("amount", T.DecimalType(10, 2)),
    T.StructField("at", T.TimestampType()),
    T.StructField("long_text", T.StringType()),
    T.StructField("gone", T.StringType()),
])


def rows(day: dt.date, n: int, spec: str = "f1") -> list[tuple]:
    at = dt.datetime(2026, 11, 1, 12, 0, 0)
    return [(day, spec, f"m{i}", Decimal("1.50"), at, "x" * 40, None) for i in range(n)]


def test_the_log_tells_partition_values_and_single_valued_columns_and_nothing_else(spark, engine):
    path = engine.layout.root + "/t"
    days = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
    engine.append(spark.createDataFrame(rows(days[0], 3) + rows(days[1], 2), SCHEMA), path, partition_by=["day"])
    assert engine.logged_values(path, "day") == set(days)  # a partition column
    assert engine.logged_values(path, "spec") == {"f1"}  # one value in every file
    assert engine.logged_values(path, "gone") == {None}  # only nulls
    assert engine.logged_values(path, "mixed") is None  # several values in a file: the rows must be read
    assert engine.logged_values(path, "amount") is None  # a type whose statistics are not trusted as exact
    assert engine.logged_values(path, "at") is None  # timestamps: delta-spark keeps milliseconds
    assert engine.logged_values(path, "long_text") is None  # text statistics keep a prefix only
    assert engine.logged_values(path, "no_such_column") is None
    assert engine.logged_values(engine.layout.root + "/none", "day") is None
    # a second value in another file is seen; a file with the value and nulls gives both
    more = [(days[1], "f2", "m", None, None, None, None), (days[1], None, "m", None, None, None, None)]
    engine.append(spark.createDataFrame(more, SCHEMA).coalesce(1), path, partition_by=["day"])
    assert engine.logged_values(path, "spec") == {"f1", "f2", None}
    # what the log says is what the rows hold
    table = engine.read(path)
    for name in ("day", "spec", "gone"):
        assert engine.logged_values(path, name) == {r[0] for r in table.select(name).distinct().collect()}


def test_gold_that_follows_its_spec_is_known_from_the_logs_without_a_spark_job(spark, rust_engine, monkeypatch):
    catalog = load_catalog(CONF)
    spec = catalog.aggregations["daily_sales_summary"]
    lake = rust_engine.layout
    day = dt.date(2026, 11, 3)
    silver = spark.createDataFrame([(day, "T1")], "transaction_date date, transaction_id string")
    rust_engine.append(silver, lake.silver(spec.source_dataset), partition_by=["transaction_date"])
    assert gold.dates_to_build(rust_engine, spec) == ("new", [day])
    current = gold.spec_fingerprint(spec)
    built = spark.createDataFrame([(day, current)], f"transaction_date date, {gold.SPEC_COLUMN} string")
    rust_engine.append(built, lake.gold(spec.name), partition_by=["transaction_date"])
    jobs = spark.sparkContext.statusTracker().getJobIdsForGroup(None)
    assert gold.dates_to_build(rust_engine, spec) is None
    assert spark.sparkContext.statusTracker().getJobIdsForGroup(None) == jobs  # answered from the logs
    # built under another version of the spec: every date is built again
    older = spark.createDataFrame([(dt.date(2026, 11, 2), "older")], f"transaction_date date, {gold.SPEC_COLUMN} string")
    rust_engine.append(older, lake.gold(spec.name), partition_by=["transaction_date"])
    assert gold.dates_to_build(rust_engine, spec) == ("changed", [dt.date(2026, 11, 2), day])
    # where the log cannot tell (no statistics), the rows answer, with the same result
    monkeypatch.setattr(rust_engine, "logged_values", lambda path, column: None)
    jobs = spark.sparkContext.statusTracker().getJobIdsForGroup(None)
    assert gold.dates_to_build(rust_engine, spec) == ("changed", [dt.date(2026, 11, 2), day])
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup(None)) > len(jobs)  # the tracker sees jobs
