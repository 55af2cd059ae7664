"""One dataset, one run date: raw -> bronze -> checks -> (quarantine | silver), the stages in order.

Each stage lives in its own module (bronze, quarantine, silver; the checks in rules/); this one runs them, measures the
batch and keeps the row accounting of `outcome.DatasetOutcome`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import faults
from lakehouse.errors import DatasetFailed
from lakehouse.frames import one_row
from lakehouse.pipeline import ingested, pending_gold
from lakehouse.pipeline.bronze import load_bronze
from lakehouse.pipeline.outcome import DatasetOutcome, QualityMetric
from lakehouse.pipeline.quarantine import write_quarantine
from lakehouse.pipeline.silver import ROW_HASH, SILVER_LINEAGE, one_per_key, row_hash, silver_plan
from lakehouse.rules import dataset_checks
from lakehouse.rules.checks import ERRORS, check_names, evaluate, has_error
from lakehouse.rules.cleaning import clean, superseded
from lakehouse.rules.conform import conform
from lakehouse.sources.files import discover
from lakehouse.sources.reader import LINEAGE, new_columns
from lakehouse.specs import models as m
from lakehouse.sql import column
from lakehouse.tables.engine import TableEngine
from lakehouse.tables.paths import sweep


@dataclass(frozen=True)
class BatchStats:
    """What `measure` found in the batch, in one Spark job: row counts, the raw files the rows came from and
    the aggregate of each dataset check that has one (by check index)."""

    clean_rows: int  # rows no check flagged, not even a warning
    superseded: int  # valid rows a dedup cleaning step set aside
    source_files: list[str]
    dataset_aggregates: dict[int, Any]


@dataclass(frozen=True)
class SilverSource:
    """The rows for silver (persisted) and the values of its partition and gold date columns."""

    df: DataFrame
    values: dict[str, list[Any]]


class DatasetLoad:
    """Loads one dataset for one run date through the table engine: `run` is the sequence of stages, each
    taking what the one before returned; `outcome` gathers the counts as they are known."""

    def __init__(self, engine: TableEngine, spec: m.DatasetSpec, run_id: str, run_date: dt.date,
                 ingested_at: dt.datetime, gold_dates: dict[str, str], from_bronze: bool = False,
                 ingested_state: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        self.engine = engine
        self.spark = engine.spark
        self.lake = engine.layout
        self.spec = spec
        self.run_id = run_id
        self.run_date = run_date
        self.ingested_at = ingested_at
        self.gold_dates = gold_dates  # aggregation built from this dataset -> its date column
        self.gold_date_columns = sorted(set(gold_dates.values()))
        self.from_bronze = from_bronze
        # the ingested-file log's latest row per file of this raw day (read once per run date by the job)
        self.ingested_state = ingested_state or {}
        self.outcome = DatasetOutcome(spec.name, run_date)

    def staging(self, *parts: str) -> str:
        return self.lake.staging(self.run_id, self.spec.name, *parts)

    # ------------------------------------------------------------------ stages

    def run(self) -> DatasetOutcome:
        try:
            return self.stages()
        finally:
            sweep(self.staging())  # on any storage: the next dataset's work is not left beside this one's

    def stages(self) -> DatasetOutcome:
        faults.point("dataset:start")
        raw_columns = self.bronze_from_raw() if not self.from_bronze else self.bronze_as_held()
        if raw_columns is None:
            return self.outcome
        out, spec = self.outcome, self.spec
        out.raw_columns = raw_columns
        out.new_columns = new_columns(spec, raw_columns)
        extras = [c for c in out.new_columns if spec.on_new_columns == "add"]
        checked = self.check(extras)
        with out.timed("measure"):
            stats = self.measure(checked)
        with out.timed("quarantine"):
            write_quarantine(self.engine, spec, self.run_id, self.run_date, checked, out.rows_quarantined)
        faults.point("quarantine:written")
        with out.timed("silver_source"):
            source = self.silver_source(checked)
        try:
            try:
                self.gate(stats, raw_columns)
            except DatasetFailed as failed:
                out.status, out.message = "failed", str(failed)
                self.hold_back()
                return out
            with out.timed("silver"):
                self.merge_silver(source, stats, extras)
        finally:
            source.df.unpersist()
        return out

    def bronze_as_held(self) -> list[str] | None:
        """Full refresh: silver is rebuilt from what bronze already holds; raw files are not read."""
        bronze = self.engine.read_or_none(self.lake.bronze(self.spec.name))
        if bronze is None:
            self.outcome.status, self.outcome.message = "no_data", "no bronze table"
            return None
        return [c for c in bronze.columns if c not in LINEAGE]

    def bronze_from_raw(self) -> list[str] | None:
        """The day's raw files into bronze (or, when they are exactly as last ingested, bronze as it is); the raw
        columns read, or None when there is nothing to check."""
        out = self.outcome
        with out.timed("read"):
            day = discover(self.spec, self.lake, self.run_date)
        out.files, out.skipped = len(day.files), list(day.skipped)
        if not day.files:
            out.status, out.message = "no_data", f"no raw files in {day.folder}"
            return None
        known = None
        if self.engine.exists(self.lake.bronze(self.spec.name)):
            known = ingested.unchanged_since_ingest(self.ingested_state, self.spec.name, day.files)
        if known is not None:
            # the same bytes are in bronze already: rebuild silver from there, do not parse them again
            out.raw_files, out.rejected, out.bronze_reused = known.read, known.rejected, True
            return known.columns
        with out.timed("bronze"):
            loaded = load_bronze(self.engine, self.spec, day, self.run_id, self.ingested_at, self.staging("raw"))
        faults.point("bronze:written")
        out.raw_files, out.rejected = loaded.read, loaded.rejected
        if not loaded.rows:
            out.raw_columns = loaded.columns
            out.message = "no readable raw file"
            if out.rejected and self.spec.on_bad_file == "fail":
                out.status, out.message = "failed", self.bad_file_failure()
                out.failed_stage = "bronze"
                self.hold_back()
            return None
        return loaded.columns

    def hold_back(self) -> None:
        """The dataset failed: its valid rows are held back (none reach silver)."""
        out = self.outcome
        out.rows_duplicate = 0
        out.rows_held_back = out.rows_read - out.rows_quarantined

    def bad_file_failure(self) -> str:
        shown = "; ".join(f"{r.file.path}: {r.reason}" for r in self.outcome.rejected[:3])
        more = f" (and {len(self.outcome.rejected) - 3} more)" if len(self.outcome.rejected) > 3 else ""
        return f"{len(self.outcome.rejected)} raw file(s) cannot be read (on_bad_file: fail): {shown}{more}"

    def bronze_day(self) -> DataFrame:
        return self.engine.read(self.lake.bronze(self.spec.name), partitions={"_partition_date": [self.run_date]})

    def references(self) -> dict[str, DataFrame | None]:
        return {ref: self.engine.read_or_none(self.lake.silver(ref)) for ref in self.spec.references()}

    def check(self, extras: list[str]) -> DataFrame:
        """The day's bronze rows conformed, cleaned and checked, written once to staging and read back."""
        spec = self.spec
        prepared = (self.bronze_day()
                    .transform(conform(spec, extras))
                    .transform(clean(spec.cleaning))
                    .transform(evaluate(spec, self.references(), now=self.ingested_at)))
        with self.outcome.timed("check"):
            prepared.write.mode("overwrite").parquet(self.staging("checked"))
        return self.spark.read.parquet(self.staging("checked"))

    # ------------------------------------------------------------------ metrics

    def measure(self, checked: DataFrame) -> BatchStats:
        """All counts of the batch in one Spark job over the checked rows."""
        spec = self.spec
        names = check_names(spec, checked)
        error = has_error()
        counts = {
            "total": F.count(F.lit(1)),
            "quarantined": F.sum(error.cast("int")),
            "warned": F.sum((~error & (F.size(ERRORS) > 0)).cast("int")),
            "malformed": F.sum(F.array_contains(F.col(ERRORS).getField("check"), "malformed_record").cast("int")),
            "clean_rows": F.sum((F.size(ERRORS) == 0).cast("int")),
            # rows a dedup cleaning step set aside count as duplicates, like rows sharing a key
            "superseded": F.sum((~error & superseded(checked)).cast("int")),
        }
        per_dataset_check = dataset_checks.aggregates(spec, ~error)
        found = one_row(checked.agg(*[v.alias(k) for k, v in counts.items()],
                            F.collect_set("_source_file").alias("source_files"),
                            *[v.alias(f"dataset_check_{i}") for i, v in per_dataset_check.items()]))
        # failing rows per check: a rule fails at most once per row and column, so exploding the failures of
        # the failing rows and counting is exact (and reads only those rows)
        per_check = {(r["check"], r["column"]): r["n"] for r in (
            checked.where(F.size(ERRORS) > 0).select(F.explode(ERRORS).alias("e"))
            .groupBy(F.col("e.check").alias("check"), F.col("e.column").alias("column"))
            .agg(F.count(F.lit(1)).alias("n")).collect())}
        row = {k: int(found[k] or 0) for k in counts}
        out = self.outcome
        out.rows_read = int(row["total"])
        out.rows_quarantined = int(row["quarantined"])
        out.rows_warned = int(row["warned"])
        out.rows_malformed = int(row["malformed"])
        out.quality.append(QualityMetric(
            "quality_score", None, "dataset", out.rows_read, out.rows_read - int(row["clean_rows"]),
            observed=int(row["clean_rows"]) / out.rows_read if out.rows_read else 1.0,
            threshold="share of rows passing every row check", status="info"))
        for name, col_name, criticality in names:
            failed = int(per_check.get((name, col_name), 0))
            status = "pass" if failed == 0 else ("fail" if criticality == "error" else "warn")
            out.quality.append(QualityMetric(name, col_name, criticality, out.rows_read, failed,
                                             observed=failed / out.rows_read if out.rows_read else 0.0,
                                             status=status))
        return BatchStats(row["clean_rows"], row["superseded"], list(found["source_files"]),
                          {i: found[f"dataset_check_{i}"] for i in per_dataset_check})

    def gate(self, stats: BatchStats, raw_columns: list[str]) -> None:
        """Dataset checks, schema drift, bad files and duplicates under `fail`: DatasetFailed with the reasons
        when the batch must not reach silver. Each dataset check's result is recorded in the quality metrics."""
        spec, out = self.spec, self.outcome
        failures = []
        if out.rejected and spec.on_bad_file == "fail":
            failures.append(self.bad_file_failure())
        if out.new_columns and spec.on_new_columns == "fail":
            failures.append(f"new columns {out.new_columns} in the raw data (on_new_columns: fail)")
        key_duplicates = out.rows_duplicate - stats.superseded
        if key_duplicates and spec.duplicates == "fail":
            failures.append(f"{key_duplicates} duplicate row(s) for keys {spec.keys} (duplicates: fail), e.g. "
                            f"{self.colliding_keys()}")
        valid = out.rows_read - out.rows_quarantined
        previous = self.previous_rows_read
        for i, check in enumerate(spec.dataset_checks):
            name = check.name or check.check
            result = dataset_checks.judge(check, dataset_checks.DatasetCheckContext(
                valid=valid, batch=valid - out.rows_duplicate, rows_read=out.rows_read,
                aggregate=stats.dataset_aggregates.get(i), raw_columns=raw_columns, run_date=self.run_date,
                previous_rows=previous))
            status = "pass" if result.passed else ("fail" if check.action == "fail" else "warn")
            out.quality.append(QualityMetric(name, result.column, "dataset", valid, 0 if result.passed else 1,
                                             observed=result.observed, threshold=result.threshold, status=status))
            if status == "fail":
                shown = "n/a" if result.observed is None else f"{result.observed:.4g}"
                failures.append(f"dataset check {name} failed: observed {shown}; {result.threshold}")
        if failures:
            raise DatasetFailed(failures)

    def colliding_keys(self, limit: int = 10) -> list[dict[str, Any]]:
        keys = [column(k) for k in self.spec.keys]
        checked = self.spark.read.parquet(self.staging("checked"))
        rows = (checked.where(~has_error() & ~superseded(checked)).groupBy(*keys).count().where("count > 1")
                .orderBy(*keys).limit(limit).collect())
        return [{k: r[k] for k in self.spec.keys} for r in rows]

    @property
    def previous_rows_read(self) -> int | None:
        """Rows read by the latest successful run of this dataset for an earlier run date."""
        if not any(isinstance(c, m.RowCountChange) for c in self.spec.dataset_checks):
            return None
        runs = self.engine.read_or_none(self.lake.meta("runs"))
        if runs is None:
            return None
        row = (runs.where((F.col("layer") == "silver") & (F.col("name") == self.spec.name)
                          & (F.col("status") == "ok") & (F.col("run_date") < F.lit(self.run_date)))
               .orderBy(F.col("run_date").desc(), F.col("finished_at").desc()).select("rows_read").first())
        return None if row is None else int(row[0])

    # ------------------------------------------------------------------ writes

    def silver_source(self, checked: DataFrame) -> SilverSource:
        """The rows for silver: valid, not superseded, one per key (the latest), with their content hash.
        Persisted on disk (read by the comparison with silver and by the writes) and measured in one job:
        its row count gives the duplicates, and the values of the partition and gold date columns are kept."""
        spec = self.spec
        business = [c for c in checked.columns if not c.startswith("_")]
        valid = (checked.where(~has_error() & ~superseded(checked))
                 .withColumnRenamed("_partition_date", "_source_date")
                 .withColumn(ROW_HASH, row_hash(checked, business)))
        source = (one_per_key(self.spec, valid)
                  .select(*[column(c) for c in business], *SILVER_LINEAGE, ROW_HASH)
                  .persist(StorageLevel.DISK_ONLY))
        value_columns = list(dict.fromkeys(spec.target.partition_by + self.gold_date_columns))
        row = one_row(source.agg(F.count(F.lit(1)).alias("_rows"),
                         *[F.collect_set(column(c)).alias(f"values_{i}") for i, c in enumerate(value_columns)],
                         *[F.max(column(c).isNull()).alias(f"nulls_{i}") for i, c in enumerate(value_columns)]
                         ))
        values = {c: list(row[f"values_{i}"]) + ([None] if row[f"nulls_{i}"] else [])
                  for i, c in enumerate(value_columns)}
        out = self.outcome
        out.rows_duplicate = out.rows_read - out.rows_quarantined - int(row["_rows"])
        return SilverSource(source, values)

    def merge_silver(self, source: SilverSource, stats: BatchStats, extras: list[str]) -> None:
        spec, out, values = self.spec, self.outcome, source.values
        out.rows_to_silver = out.rows_read - out.rows_quarantined - out.rows_duplicate
        plan = silver_plan(spec, values, stats.source_files, self.run_date, self.from_bronze,
                           evolve_schema=bool(extras))
        faults.point("silver:before")
        owed = {name: values[date_column] for name, date_column in self.gold_dates.items()}
        result = self.engine.merge_replacing(source.df, self.lake.silver(spec.name), plan,
                                             before_write=lambda: pending_gold.record(self.engine, self.run_id, owed))
        faults.point("silver:written")
        out.merge = result
        if result.inserted or result.updated or result.deleted:
            out.affected_dates = {c: sorted({v for v in values[c] if v is not None})
                                  for c in self.gold_date_columns}
