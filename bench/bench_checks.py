"""The checking-stage benchmark of `make bench` (see run_bench.py: `checks`)."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path

from common import STAGE_RUNS, timed
from pyspark.sql import functions as F


def bench_checks(spark, rows: int, repeat: int, work: Path) -> dict:
    """The dataset's checking stage as the pipeline runs it: bronze rows (text) read from Parquet, typed cast,
    row checks, checked rows written to staging Parquet. Also the evaluation alone, on cached rows."""
    from lakehouse.rules.checks import evaluate
    from lakehouse.rules.conform import conform
    from lakehouse.specs.models import DatasetSpec

    data = (spark.range(rows).select(
        F.col("id").cast("string").alias("id"),
        (F.col("id") % 1000).cast("int").alias("qty"),
        F.concat(F.lit("CUST"), F.lpad((F.col("id") % 99999).cast("string"), 5, "0")).alias("customer"),
        F.when(F.col("id") % 50 == 0, F.lit(None)).otherwise(F.concat(F.col("id"), F.lit("@example.com")))
        .alias("email"),
        (F.col("id") % 97 / 3.0).alias("price"),
        F.expr("timestamp_seconds(1700000000 + id)").alias("ts"),
    )).cache()
    data.count()
    # failure rates like real data: each check fails between 0 and ~2% of rows
    one = [{"check": "range", "column": "qty", "min": 1, "max": 995}]
    twenty = one + [
        {"check": "not_null", "columns": ["id", "customer"]},
        {"check": "not_empty", "column": "customer", "criticality": "warn"},
        {"check": "regex", "column": "customer", "pattern": "^CUST\\d{5}$"},
        {"check": "email", "column": "email", "criticality": "warn"},
        {"check": "in_set", "column": "qty", "values": [v for v in range(1000) if v != 500], "criticality": "warn"},
        {"check": "not_in_set", "column": "customer", "values": ["CUST00000"]},
        {"check": "range", "column": "price", "min": 0, "max": 33, "inclusive": False, "criticality": "warn"},
        {"check": "length", "column": "customer", "min": 9, "max": 9},
        {"check": "not_in_future", "column": "ts"},
        {"check": "not_older_than", "column": "ts", "days": 36500},
        {"check": "compare", "left": "price", "op": "<=", "right": "qty + 100"},
        {"check": "expression", "expression": "qty >= 0 OR price > 1", "criticality": "warn"},
        {"check": "castable", "column": "id", "type": "bigint"},
        {"check": "parseable", "column": "id", "type": "timestamp", "formats": ["yyyy-MM-dd"],
         "criticality": "warn", "filter": "qty = 7"},
        {"check": "phone", "column": "customer", "criticality": "warn", "filter": "qty = 1"},
        {"check": "range", "column": "qty", "min": -1, "name": "non_negative"},
        {"check": "not_null", "column": "email", "criticality": "warn"},
        {"check": "regex", "column": "email", "pattern": "example", "criticality": "warn"},
        {"check": "length", "column": "email", "max": 40, "criticality": "warn"},
    ]
    assert len(twenty) == 20
    bronze = str(work / "bronze")
    data.select(*[F.col(c).cast("string").alias(c) for c in data.columns]).write.mode("overwrite").parquet(bronze)
    out: dict = {"rows": rows}
    now = dt.datetime.now(dt.UTC)  # a run judges time-relative checks against one instant (its start)
    stages, evaluated = {}, {}
    for label, checks in (("1_check", one), ("20_checks", twenty)):
        spec = DatasetSpec.model_validate({
            "name": "bench", "source": {"format": "csv", "path": "raw/bench"}, "keys": ["id"],
            "schema": {"id": "string", "qty": "int", "customer": "string", "email": "string", "price": "double",
                       "ts": "timestamp"}, "checks": checks})

        def stage(spec=spec):
            (spark.read.parquet(bronze).transform(conform(spec)).transform(evaluate(spec, now=now))
             .write.mode("overwrite").parquet(str(work / "checked")))

        stages[label] = stage
        evaluated[label] = data.transform(evaluate(spec, now=now))
    # The generated code of a stage is JIT-compiled while it runs, and a wide check set takes about three runs
    # of 1M rows to settle. The first run of each (cold, what a fresh process pays) is reported on its own; after
    # two warm-up runs each, the two stages run alternately STAGE_RUNS times, so that drift of the machine
    # weighs on both alike, and the figures are the medians.
    runs: dict[str, list[float]] = {label: [] for label in stages}
    for label, stage in stages.items():
        out[f"stage_{label}_cold_s"] = timed(stage)
    for _ in range(2):
        for stage in stages.values():
            stage()
    for _ in range(STAGE_RUNS):
        for label, stage in stages.items():
            runs[label].append(timed(stage))
    for label, times in runs.items():
        out[f"stage_{label}_runs_s"] = [round(r, 3) for r in times]
        out[f"stage_{label}_s"] = statistics.median(times)
        e = evaluated[label]
        e.write.format("noop").mode("overwrite").save()
        out[f"evaluation_only_{label}_s"] = timed(lambda e=e: e.write.format("noop").mode("overwrite").save(),
                                                   repeat)
    data.unpersist()
    out["stage_ratio"] = out["stage_20_checks_s"] / out["stage_1_check_s"]
    out["target_stage_ratio"] = "<= 1.5 (medians)"
    out["stage_ratio_cold"] = out["stage_20_checks_cold_s"] / out["stage_1_check_cold_s"]
    out["evaluation_only_ratio"] = out["evaluation_only_20_checks_s"] / out["evaluation_only_1_check_s"]
    return out


# ---------------------------------------------------------------------------------------------- merge
