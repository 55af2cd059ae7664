"""One dataset, one run date: raw -> bronze -> (quarantine | silver).

Row accounting holds for every outcome:
    rows_read = rows_to_silver + rows_quarantined + rows_duplicate + rows_held_back
where rows_held_back are valid rows not merged because the dataset failed (a dataset check with action fail,
or new columns under `on_new_columns: fail`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.pipeline import ingested
from lakehouse.pipeline.bronze import load_bronze
from lakehouse.rules.checks import ERRORS, check_names, evaluate, has_error
from lakehouse.rules.cleaning import clean, superseded
from lakehouse.rules.conform import conform
from lakehouse.rules.sql import ident, literal
from lakehouse.sources.files import discover
from lakehouse.sources.reader import LINEAGE, RAW_RECORD, new_columns
from lakehouse.specs import models as m
from lakehouse.specs.names import snake_case
from lakehouse.tables.engine import MergePlan, MergeResult, TableEngine, sql_literal
from lakehouse.tables.paths import is_remote

ROW_HASH = "_row_hash"
# an unparseable line cannot be masked column by column; when a dataset masks data, quarantine keeps only this
WITHHELD = "<withheld: the dataset masks sensitive columns; the raw line is in bronze>"
# up to this many repeated keys in a batch are resolved by broadcasting them (see DatasetLoad.one_per_key)
BROADCAST_REPEATED_KEYS = 200_000
SILVER_LINEAGE = ["_source_file", "_source_date", "_run_id", "_ingested_at"]


class DatasetFailed(Exception):
    """The dataset cannot be merged this run (its rows are held back, the run exits 1)."""


@dataclass
class QualityMetric:
    check: str
    column: str | None
    criticality: str
    evaluated_rows: int
    failed_rows: int
    observed: float | None = None
    threshold: str | None = None
    status: str = "pass"


@dataclass
class DatasetOutcome:
    dataset: str
    run_date: dt.date
    status: str = "ok"  # ok | no_data | failed
    message: str = ""
    files: int = 0
    rows_read: int = 0
    rows_malformed: int = 0
    rows_quarantined: int = 0
    rows_warned: int = 0
    rows_duplicate: int = 0
    rows_held_back: int = 0
    rows_to_silver: int = 0
    merge: MergeResult | None = None
    new_columns: list[str] = field(default_factory=list)
    affected_dates: dict[str, list[dt.date]] = field(default_factory=dict)
    quality: list[QualityMetric] = field(default_factory=list)
    raw_files: list = field(default_factory=list)  # files read
    rejected: list = field(default_factory=list)  # Rejection of each file that could not be read
    skipped: list[str] = field(default_factory=list)  # files in the partition that are not data files
    bronze_reused: bool = False
    raw_columns: list[str] = field(default_factory=list)
    # wall-clock seconds per stage (bronze, check, measure, quarantine, silver), for the run log and the bench
    timings: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - start, 3)

    def accounted(self) -> bool:
        return self.rows_read == (self.rows_to_silver + self.rows_quarantined + self.rows_duplicate
                                  + self.rows_held_back)


def row_hash(df: DataFrame, columns: list[str]):
    """A content hash of the business columns: a matched silver/gold row is rewritten only when it changes.
    Each non-null value is hashed with its column's name and the hashes are combined by XOR, so the hash does not
    depend on the order of the columns, and a null value counts as an absent column: a batch that carries an
    optional or evolved column with nulls (a full refresh from bronze, a later day's files) hashes like one
    without it. Nested values are hashed through their JSON text."""
    parts = []
    for c in sorted(columns):
        nested = isinstance(df.schema[c].dataType, T.StructType | T.ArrayType | T.MapType)
        value = f"to_json({ident(c)})" if nested else ident(c)
        parts.append(f"(CASE WHEN {ident(c)} IS NULL THEN 0L ELSE xxhash64({literal(c)}, {value}) END)")
    return F.expr(" ^ ".join(parts) if parts else "0L")


def silver_update_condition(spec: m.DatasetSpec) -> str:
    """Update a matched row only when the content changed and the source row is not older."""
    newer = "s._source_date >= t._source_date"
    if spec.sequence_by:
        q = f"`{spec.sequence_by}`"
        newer = (f"(s.{q} > t.{q} OR t.{q} IS NULL OR "
                 f"((s.{q} IS NOT DISTINCT FROM t.{q}) AND s._source_date >= t._source_date))")
    condition = f"s.{ROW_HASH} <> t.{ROW_HASH} AND {newer}"
    if spec.target.merge_update_when:
        condition += f" AND ({spec.target.merge_update_when})"
    return condition


def deduplicate(spec: m.DatasetSpec):
    """DataFrame -> DataFrame: keep one row per key, the latest by the sequence column then the raw day."""
    order = []
    if spec.sequence_by:
        order.append(F.col(f"`{spec.sequence_by}`").desc_nulls_last())
    order += [F.col("_source_date").desc(), F.col("_source_file").desc(), F.col(ROW_HASH).desc()]
    window = Window.partitionBy(*[F.col(f"`{k}`") for k in spec.keys]).orderBy(*order)
    return lambda df: df.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


@dataclass
class DatasetCheckContext:
    valid: int
    batch: int
    rows_read: int
    stats: dict[str, Any]
    raw_columns: list[str]
    run_date: dt.date
    previous_rows: int | None


def dataset_check_aggregates(spec: m.DatasetSpec, valid) -> dict[str, Any]:
    """The aggregate columns the dataset checks need, computed in the same job as the row counts."""
    aggs: dict[str, Any] = {}
    for i, c in enumerate(spec.dataset_checks):
        key = f"dcheck_{i}"
        if isinstance(c, m.Completeness):
            aggs[key] = F.sum((valid & F.col(f"`{c.column}`").isNotNull()).cast("int"))
        elif isinstance(c, m.Uniqueness):
            aggs[key] = F.count_distinct(F.when(valid, F.struct(*[F.col(f"`{x}`") for x in c.columns])))
        elif isinstance(c, m.Freshness):
            aggs[key] = F.max(F.when(valid, F.col(f"`{c.column}`").cast("timestamp")))
        elif isinstance(c, m.Statistic):
            fn = {"min": F.min, "max": F.max, "mean": F.avg, "stddev": F.stddev_samp}[c.stat]
            aggs[key] = fn(F.when(valid, F.col(f"`{c.column}`").cast("double")))
    return aggs


def evaluate_dataset_check(check: m.DatasetCheck, index: int, ctx: DatasetCheckContext
                           ) -> tuple[float | None, bool, str, str | None]:
    """(observed value, passed, threshold text, column) of one dataset check."""
    stat = ctx.stats.get(f"dcheck_{index}")
    match check:
        case m.RowCount():
            ok = (check.min is None or ctx.batch >= check.min) and (check.max is None or ctx.batch <= check.max)
            return float(ctx.batch), ok, f"[{check.min}, {check.max}] rows", None
        case m.Completeness():
            observed = (stat or 0) / ctx.valid if ctx.valid else 0.0
            return observed, observed >= check.min, f">= {check.min}", check.column
        case m.Uniqueness():
            observed = (stat or 0) / ctx.valid if ctx.valid else 1.0
            return observed, observed >= check.min, f">= {check.min}", ",".join(check.columns)
        case m.Freshness():
            reference = dt.datetime.combine(ctx.run_date + dt.timedelta(days=1), dt.time())
            if stat is None:
                return None, False, f"<= {check.max_age_hours} h", check.column
            age = (reference - stat.replace(tzinfo=None)).total_seconds() / 3600
            return age, age <= check.max_age_hours, f"<= {check.max_age_hours} h", check.column
        case m.Statistic():
            ok = stat is not None and (check.min is None or stat >= check.min) and (
                check.max is None or stat <= check.max)
            return (None if stat is None else float(stat)), ok, f"{check.stat} in [{check.min}, {check.max}]", \
                check.column
        case m.RowCountChange():
            if not ctx.previous_rows:
                return None, True, f"|change| <= {check.max_change} (no earlier run)", None
            change = abs(ctx.rows_read - ctx.previous_rows) / ctx.previous_rows
            return change, change <= check.max_change, f"|change| <= {check.max_change} vs {ctx.previous_rows}", None
        case m.RequiredColumns():
            # a column as named in the files or as the reader maps it (snake_case, case-insensitive)
            present = {c.lower() for c in ctx.raw_columns}
            missing = [c for c in check.columns if c.lower() not in present and snake_case(c) not in present]
            return float(len(missing)), not missing, f"present: {check.columns}", ",".join(missing) or None
    raise TypeError(f"no evaluation for dataset check {check!r}")


class DatasetLoad:
    """Loads one dataset for one run date through the table engine."""

    def __init__(self, engine: TableEngine, spec: m.DatasetSpec, run_id: str, run_date: dt.date,
                 ingested_at: dt.datetime, gold_date_columns: list[str], from_bronze: bool = False,
                 ingested_state: dict | None = None) -> None:
        self.engine = engine
        self.spark = engine.spark
        self.lake = engine.layout
        self.spec = spec
        self.run_id = run_id
        self.run_date = run_date
        self.ingested_at = ingested_at
        self.gold_date_columns = gold_date_columns
        self.from_bronze = from_bronze
        self.ingested_state = ingested_state or {}
        self.outcome = DatasetOutcome(spec.name, run_date)

    # ------------------------------------------------------------------ stages

    def run(self) -> DatasetOutcome:
        try:
            return self._run()
        finally:
            staging = self.lake.staging(self.run_id, self.spec.name)
            if not is_remote(staging):
                shutil.rmtree(staging, ignore_errors=True)

    def _run(self) -> DatasetOutcome:
        if self.from_bronze:
            # full refresh: silver is rebuilt from what bronze already holds; raw files are not read
            bronze = self.engine.read_or_none(self.lake.bronze(self.spec.name))
            if bronze is None:
                self.outcome.status = "no_data"
                self.outcome.message = "no bronze table"
                return self.outcome
            self.raw_columns = [c for c in bronze.columns if c not in LINEAGE]
        else:
            day = discover(self.spec, self.lake, self.run_date)
            out = self.outcome
            out.files, out.skipped = len(day.files), list(day.skipped)
            if not day.files:
                out.status = "no_data"
                out.message = f"no raw files in {day.folder}"
                return out
            known = ingested.unchanged_since_ingest(self.ingested_state, self.spec.name, day.files) \
                if self.engine.exists(self.lake.bronze(self.spec.name)) else None
            if known is not None:
                # the same bytes are in bronze already: rebuild silver from there, do not parse them again
                self.raw_columns = known.columns
                out.raw_files, out.rejected = known.read, known.rejected
                out.bronze_reused = True
            else:
                with out.timed("bronze"):
                    loaded = load_bronze(self.engine, self.spec, day, self.run_id, self.ingested_at,
                                         self.lake.staging(self.run_id, self.spec.name, "raw"))
                self.raw_columns = loaded.columns
                out.raw_files, out.rejected = loaded.read, loaded.rejected
                if not loaded.rows:
                    out.raw_columns = self.raw_columns
                    out.message = "no readable raw file"
                    self.gate_files()
                    return out
        self.outcome.raw_columns = self.raw_columns
        self.outcome.new_columns = new_columns(self.spec, self.raw_columns)
        self.check(self.lake.staging(self.run_id, self.spec.name, "checked"))
        return self.outcome

    def gate_files(self) -> None:
        """Under `on_bad_file: fail` a rejected file fails the dataset (its other rows are held back)."""
        out = self.outcome
        if out.rejected and self.spec.on_bad_file == "fail":
            out.status = "failed"
            out.message = self.bad_file_failure()
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

    def check(self, checked_path: str) -> None:
        spec = self.spec
        extras = [c for c in self.outcome.new_columns if spec.on_new_columns == "add"]
        prepared = (self.bronze_day()
                    .transform(conform(spec, extras))
                    .transform(clean(spec.cleaning))
                    .transform(evaluate(spec, self.references(), now=self.ingested_at)))
        with self.outcome.timed("check"):
            prepared.write.mode("overwrite").parquet(checked_path)
        checked = self.spark.read.parquet(checked_path)
        with self.outcome.timed("measure"):
            self.measure(checked)
        with self.outcome.timed("quarantine"):
            self.write_quarantine(checked)
        with self.outcome.timed("silver_source"):
            source = self.silver_source(checked)
        try:
            self.gate()
        except DatasetFailed as exc:
            source.unpersist()
            self.outcome.status = "failed"
            self.outcome.message = str(exc)
            self.outcome.rows_duplicate = 0
            self.outcome.rows_held_back = self.outcome.rows_read - self.outcome.rows_quarantined
            return
        try:
            with self.outcome.timed("silver"):
                self.merge_silver(source, extras)
        finally:
            source.unpersist()

    # ------------------------------------------------------------------ metrics

    def measure(self, checked: DataFrame) -> None:
        """All counts of the batch in one Spark job over the checked rows."""
        spec = self.spec
        names = check_names(spec, checked)
        error = has_error()
        aggs: dict[str, Any] = {
            "total": F.count(F.lit(1)),
            "quarantined": F.sum(error.cast("int")),
            "warned": F.sum((~error & (F.size(ERRORS) > 0)).cast("int")),
            "malformed": F.sum(F.array_contains(F.col(ERRORS).getField("check"), "malformed_record").cast("int")),
            # rows a dedup cleaning step set aside count as duplicates, like rows sharing a key
        }
        aggs["clean_rows"] = F.sum((F.size(ERRORS) == 0).cast("int"))
        aggs["superseded"] = F.sum((~error & superseded(checked)).cast("int"))
        aggs["source_files"] = F.collect_set("_source_file")
        aggs.update(dataset_check_aggregates(spec, ~error))
        row = checked.agg(*[v.alias(k) for k, v in aggs.items()]).first().asDict()
        # failing rows per check: a rule fails at most once per row and column, so exploding the failures of
        # the failing rows and counting is exact (and reads only those rows)
        per_check = {(r["check"], r["column"]): r["n"] for r in (
            checked.where(F.size(ERRORS) > 0).select(F.explode(ERRORS).alias("e"))
            .groupBy(F.col("e.check").alias("check"), F.col("e.column").alias("column"))
            .agg(F.count(F.lit(1)).alias("n")).collect())}
        row = {k: (0 if v is None and not k.startswith("dcheck_") else v) for k, v in row.items()}
        out = self.outcome
        out.rows_read = int(row["total"])
        out.rows_quarantined = int(row["quarantined"])
        out.rows_warned = int(row["warned"])
        out.rows_malformed = int(row["malformed"])
        out.quality.append(QualityMetric(
            "quality_score", None, "dataset", out.rows_read, out.rows_read - int(row["clean_rows"]),
            observed=int(row["clean_rows"]) / out.rows_read if out.rows_read else 1.0,
            threshold="share of rows passing every row check", status="info"))
        for name, column, criticality in names:
            failed = int(per_check.get((name, column), 0))
            status = "pass" if failed == 0 else ("fail" if criticality == "error" else "warn")
            out.quality.append(QualityMetric(name, column, criticality, out.rows_read, failed,
                                             observed=failed / out.rows_read if out.rows_read else 0.0,
                                             status=status))
        self._row_stats = row

    def gate(self) -> None:
        """Dataset checks and schema drift: raise DatasetFailed when the batch must not reach silver."""
        spec, out = self.spec, self.outcome
        failures = []
        if out.rejected and spec.on_bad_file == "fail":
            failures.append(self.bad_file_failure())
        if out.new_columns and spec.on_new_columns == "fail":
            failures.append(f"new columns {out.new_columns} in the raw data (on_new_columns: fail)")
        key_duplicates = out.rows_duplicate - int(self._row_stats["superseded"])
        if key_duplicates and spec.duplicates == "fail":
            failures.append(f"{key_duplicates} duplicate row(s) for keys {spec.keys} (duplicates: fail), e.g. "
                            f"{self.colliding_keys()}")
        context = DatasetCheckContext(
            valid=out.rows_read - out.rows_quarantined, batch=out.rows_read - out.rows_quarantined - out.rows_duplicate,
            rows_read=out.rows_read, stats=self._row_stats, raw_columns=self.raw_columns,
            run_date=self.run_date, previous_rows=self.previous_rows_read)
        for i, dcheck in enumerate(spec.dataset_checks):
            name = dcheck.name or dcheck.check
            observed, ok, threshold, column = evaluate_dataset_check(dcheck, i, context)
            status = "pass" if ok else ("fail" if dcheck.action == "fail" else "warn")
            out.quality.append(QualityMetric(name, column, "dataset", context.valid, 0 if ok else 1,
                                             observed=observed, threshold=threshold, status=status))
            if status == "fail":
                shown = "n/a" if observed is None else f"{observed:.4g}"
                failures.append(f"dataset check {name} failed: observed {shown}, expected {threshold}")
        if failures:
            raise DatasetFailed("; ".join(failures))

    def colliding_keys(self, limit: int = 10) -> list[dict]:
        keys = [F.col(f"`{k}`") for k in self.spec.keys]
        checked = self.spark.read.parquet(self.lake.staging(self.run_id, self.spec.name, "checked"))
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

    def write_quarantine(self, checked: DataFrame) -> None:
        spec = self.spec
        record_cols = [c for c in checked.columns if not c.startswith("_")]
        rows = checked.where(has_error()).select(
            F.lit(spec.name).alias("dataset"),
            F.lit(self.run_id).alias("run_id"),
            F.lit(self.run_date).cast("date").alias("run_date"),
            F.col("_source_file").alias("source_file"),
            F.to_json(F.struct(*[F.col(f"`{c}`") for c in record_cols])).alias("record"),
            (F.when(F.col(RAW_RECORD).isNotNull(), F.lit(WITHHELD)) if spec.has_masking()
             else F.col(RAW_RECORD)).alias("raw_record"),
            F.col(ERRORS).alias("errors"),
            F.col("_ingested_at").alias("quarantined_at"),
            F.col("_partition_date"),
        )
        where = f"_partition_date = {sql_literal(self.run_date.isoformat())}"
        self.engine.replace_partitions(rows, self.lake.quarantine(spec.name), ["_partition_date"], where)

    def silver_source(self, checked: DataFrame) -> DataFrame:
        """The rows for silver: valid, not superseded, one per key (the latest), with their content hash.
        Persisted on disk (read by the comparison with silver and by the writes) and measured in one job:
        its row count gives the duplicates, and the values of the partition and gold date columns are kept."""
        spec = self.spec
        business = [c for c in checked.columns if not c.startswith("_")]
        valid = (checked.where(~has_error() & ~superseded(checked))
                 .withColumnRenamed("_partition_date", "_source_date")
                 .withColumn(ROW_HASH, row_hash(checked, business)))
        source = (self.one_per_key(valid)
                  .select(*[F.col(f"`{c}`") for c in business], *SILVER_LINEAGE, ROW_HASH)
                  .persist(StorageLevel.DISK_ONLY))
        value_columns = list(dict.fromkeys(spec.target.partition_by + self.gold_date_columns))
        row = source.agg(F.count(F.lit(1)).alias("_rows"),
                         *[F.collect_set(f"`{c}`").alias(f"values_{i}") for i, c in enumerate(value_columns)],
                         *[F.max(F.col(f"`{c}`").isNull()).alias(f"nulls_{i}") for i, c in enumerate(value_columns)]
                         ).first()
        self.values = {c: list(row[f"values_{i}"]) + ([None] if row[f"nulls_{i}"] else [])
                       for i, c in enumerate(value_columns)}
        out = self.outcome
        out.rows_duplicate = out.rows_read - out.rows_quarantined - int(row["_rows"])
        return source

    def one_per_key(self, valid: DataFrame) -> DataFrame:
        """The latest row per key. Keys that occur more than once are found first (an aggregation over the keys
        alone); when they are few, only their rows are ranked, so the day's rows are not shuffled and sorted
        to resolve a handful of corrections."""
        keys = self.spec.keys
        repeated = valid.groupBy(*[F.col(f"`{k}`") for k in keys]).count().where("count > 1").drop("count")
        found = repeated.count()
        if found == 0:
            return valid
        if found > BROADCAST_REPEATED_KEYS:
            return valid.transform(deduplicate(self.spec))
        marked = valid.join(F.broadcast(repeated.withColumn("_repeated", F.lit(True))), on=keys, how="left")
        single = marked.where(F.col("_repeated").isNull()).drop("_repeated")
        several = marked.where(F.col("_repeated")).drop("_repeated").transform(deduplicate(self.spec))
        return single.unionByName(several)

    def merge_silver(self, source: DataFrame, extras: list[str]) -> None:
        spec = self.spec
        self.outcome.rows_to_silver = (self.outcome.rows_read - self.outcome.rows_quarantined
                                       - self.outcome.rows_duplicate)
        values = self.values
        # the day's files were read again in full: a silver row that came from one of them and is no
        # longer among its valid rows is deleted (within the partitions this batch touches)
        if self.from_bronze:
            # a rebuild from bronze: every silver row of this raw day is in scope, wherever it is partitioned
            partitions, scope = {}, {"_source_date": [self.run_date]}
        else:
            partitions = {c: values[c] for c in spec.target.partition_by}
            scope = {"_source_file": sorted(self._row_stats["source_files"])}
        plan = MergePlan(
            keys=spec.keys,
            partition_by=spec.target.partition_by,
            update_when=silver_update_condition(spec),
            partition_values=partitions,
            replace_scope=scope,
            content_hash=ROW_HASH,
            evolve_schema=bool(extras),
        )
        result = self.engine.merge_replacing(source, self.lake.silver(spec.name), plan)
        self.outcome.merge = result
        if result.inserted or result.updated or result.deleted:
            self.outcome.affected_dates = {c: sorted({v for v in values[c] if v is not None})
                                           for c in self.gold_date_columns}

