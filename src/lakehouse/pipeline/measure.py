"""Measuring a checked batch and gating it: the counts of every run date of the batch in one Spark job, the quality
metrics of each check, and the verdict of the dataset checks (which days may reach silver)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.errors import DatasetFailed
from lakehouse.results import DatasetOutcome, QualityMetric
from lakehouse.rules import dataset_checks
from lakehouse.rules.checks import ERRORS, check_names, has_error
from lakehouse.specs import models as m
from lakehouse.specs.cleaning_steps.rows import superseded
from lakehouse.specs.dataset_checks import Batch, judge, kind_of
from lakehouse.sql import column

DAY = "_partition_date"


@dataclass(frozen=True)
class DayStats:
    """What `measure` found for one run date of the batch: row counts, the raw files the rows came from and the
    aggregate of each dataset check that has one (by check index)."""

    clean_rows: int  # rows no check flagged, not even a warning
    superseded: int  # valid rows a dedup cleaning step set aside
    source_files: list[str]
    dataset_aggregates: dict[int, Any]
    values: dict[str, list[Any]]  # column -> the values among the day's rows that may reach silver (None: nulls)
    keys: int  # distinct keys among those rows (the rows the day merges)


def measure(spec: m.DatasetSpec, checked: DataFrame, outcomes: dict[dt.date, DatasetOutcome],
            value_columns: list[str]) -> dict[dt.date, DayStats]:
    """All counts of the batch, per run date, in one Spark job over the checked rows: the row counts, the failures
    per check (over the failing rows only) and the keys per day (one aggregation by key). Fills each day's outcome:
    rows read, quarantined, warned, malformed, duplicate (valid rows beyond one per key), and the quality metrics.
    Also found per day: the values of `value_columns` among the rows that may reach silver."""
    names = check_names(spec, checked)
    error = has_error()
    mergeable = ~error & ~superseded(checked)
    counts = {
        "total": F.count(F.lit(1)),
        "quarantined": F.sum(error.cast("int")),
        "warned": F.sum((~error & (F.size(ERRORS) > 0)).cast("int")),
        "malformed": F.sum(F.array_contains(F.col(ERRORS).getField("check"), "malformed_record").cast("int")),
        # a value that does not fit its type is recorded per column; the metric counts the rows with any
        "mismatched": F.sum(F.array_contains(F.col(ERRORS).getField("check"), "type_mismatch").cast("int")),
        "clean_rows": F.sum((F.size(ERRORS) == 0).cast("int")),
        # rows a dedup cleaning step set aside count as duplicates, like rows sharing a key
        "superseded": F.sum((~error & superseded(checked)).cast("int")),
    }
    values = {f"values_{i}": F.collect_set(F.when(mergeable, column(c))) for i, c in enumerate(value_columns)}
    nulls = {f"nulls_{i}": F.max(mergeable & column(c).isNull()) for i, c in enumerate(value_columns)}
    per_dataset_check = dataset_checks.aggregates(spec)
    per_day = checked.groupBy(DAY).agg(
        *[v.alias(k) for k, v in {**counts, **values, **nulls}.items()],
        F.collect_set("_source_file").alias("source_files"),
        *[v.alias(f"dataset_check_{i}") for i, v in per_dataset_check.items()]).withColumn("kind", F.lit("day"))
    # the failing rows per check (a rule fails at most once per row and column, so exploding the failures of the
    # failing rows and counting is exact, and reads only those rows), and the rows each day would merge, one per
    # key (a key with nulls groups like any other value)
    failures = (checked.where(F.size(ERRORS) > 0).select(DAY, F.explode(ERRORS).alias("e"))
                .groupBy(DAY, F.col("e.check").alias("check"), F.col("e.column").alias("column"))
                .agg(F.count(F.lit(1)).alias("n")).withColumn("kind", F.lit("check")))
    merged = (checked.where(mergeable).groupBy(DAY, *[column(k) for k in spec.batch_keys]).agg(F.count(F.lit(1)))
              .groupBy(DAY).agg(F.count(F.lit(1)).alias("n")).withColumn("kind", F.lit("keys")))
    # the three in one Spark job: each kind of row carries its own columns, the others' are null
    found, per_check, keys = {}, {}, {}
    for r in (per_day.unionByName(failures, allowMissingColumns=True)
              .unionByName(merged, allowMissingColumns=True).collect()):
        if r["kind"] == "day":
            found[r[DAY]] = r
        elif r["kind"] == "keys":
            keys[r[DAY]] = int(r["n"])
        else:
            per_check[(r[DAY], r["check"], r["column"])] = r["n"]
    stats = {}
    for day, out in outcomes.items():
        got = found.get(day)
        row = {k: int((got[k] if got is not None else 0) or 0) for k in counts}
        out.rows_read = row["total"]
        out.rows_quarantined = row["quarantined"]
        out.rows_warned = row["warned"]
        out.rows_malformed = row["malformed"]
        out.rows_duplicate = out.rows_read - out.rows_quarantined - keys.get(day, 0)
        out.quality.append(QualityMetric(
            "quality_score", None, "dataset", out.rows_read, out.rows_read - row["clean_rows"],
            observed=row["clean_rows"] / out.rows_read if out.rows_read else 1.0,
            threshold="share of rows passing every row check", status="info"))
        for name, col_name, criticality in names:
            failed = row["mismatched"] if (name, col_name) == ("type_mismatch", None) else \
                int(per_check.get((day, name, col_name), 0))
            status = "pass" if failed == 0 else ("fail" if criticality == "error" else "warn")
            out.quality.append(QualityMetric(name, col_name, criticality, out.rows_read, failed,
                                             observed=failed / out.rows_read if out.rows_read else 0.0,
                                             status=status))
        stats[day] = DayStats(
            row["clean_rows"], row["superseded"], list(got["source_files"]) if got else [],
            {i: got[f"dataset_check_{i}"] if got else None for i in per_dataset_check},
            {c: (list(got[f"values_{i}"]) + ([None] if got[f"nulls_{i}"] else [])) if got else []
             for i, c in enumerate(value_columns)},
            keys.get(day, 0))
    return stats


def gate(spec: m.DatasetSpec, out: DatasetOutcome, stats: DayStats, previous_rows: int | None,
         colliding_keys: Callable[[], list[dict[str, Any]]], bad_files: Callable[[], str]) -> None:
    """Dataset checks, schema drift, bad files and duplicates under `fail` for one run date: DatasetFailed with the
    reasons when its rows must not reach silver. Each dataset check's result is recorded in the quality metrics."""
    failures = []
    if out.rejected and spec.on_bad_file == "fail":
        failures.append(bad_files())
    if out.new_columns and spec.on_new_columns == "fail":
        failures.append(f"new columns {out.new_columns} in the raw data (on_new_columns: fail)")
    key_duplicates = out.rows_duplicate - stats.superseded
    if key_duplicates and spec.duplicates == "fail":
        failures.append(f"{key_duplicates} duplicate row(s) for keys {spec.batch_keys} (duplicates: fail), e.g. "
                        f"{colliding_keys()}")
    valid = out.rows_read - out.rows_quarantined
    for i, check in enumerate(spec.dataset_checks):
        name = check.name or check.check
        result = judge(check, Batch(
            valid=valid, batch=valid - out.rows_duplicate, rows_read=out.rows_read,
            aggregate=stats.dataset_aggregates.get(i), raw_columns=out.raw_columns, run_date=out.run_date,
            previous_rows=previous_rows))
        status = "pass" if result.passed else ("fail" if check.action == "fail" else "warn")
        out.quality.append(QualityMetric(name, result.column, "dataset", valid, 0 if result.passed else 1,
                                         observed=result.observed, threshold=result.threshold, status=status))
        if status == "fail":
            shown = "n/a" if result.observed is None else f"{result.observed:.4g}"
            failures.append(f"dataset check {name} failed: observed {shown}; {result.threshold}")
    if failures:
        raise DatasetFailed(failures)


def empty_day_fails(spec: m.DatasetSpec, out: DatasetOutcome) -> bool:
    """A run date without raw files fails when a dataset check that judges such days (`row_count` with `min > 0`)
    fails on no rows under `action: fail`."""
    nothing = Batch(valid=0, batch=0, rows_read=0, aggregate=None, raw_columns=[], run_date=out.run_date,
                    previous_rows=None)
    return any(check.action == "fail" and kind_of(check).empty_days and not judge(check, nothing).passed
               for check in spec.dataset_checks)
