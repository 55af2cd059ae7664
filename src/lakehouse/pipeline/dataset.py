"""One dataset over a batch of run dates: raw -> bronze -> checks -> (quarantine | silver), the stages in order.

A batch is one run date (a daily run) or several (a catch-up of pending days, a backfill, a refresh). Each day
keeps its own bronze partition, quarantine partition, counts, quality metrics and verdict, exactly as if it were
loaded alone: batch-wide rules (a dedup cleaning step, `unique`, exists_in on the batch) look within the day.
What the days share is the work: one check pass, one measuring job, one quarantine commit and one silver MERGE,
where the latest row of each key wins as it would over the days one after the other.

Each stage lives in its own module (bronze, measure, quarantine, silver; the checks in rules/); this one runs them
and keeps the row accounting of `outcome.DatasetOutcome` for every day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import faults
from lakehouse.errors import DatasetFailed
from lakehouse.frames import estimated_bytes, is_small
from lakehouse.lease import check_lease
from lakehouse.pipeline import history, ingested, pending_gold, reuse
from lakehouse.pipeline.bronze import load_bronze_days
from lakehouse.pipeline.measure import DAY, DayStats, gate, measure
from lakehouse.pipeline.quarantine import write_quarantine
from lakehouse.pipeline.silver import ROW_HASH, SILVER_LINEAGE, one_per_key, silver_plan, valid_rows
from lakehouse.results import DatasetOutcome
from lakehouse.rules.checks import evaluate, has_error
from lakehouse.rules.cleaning import clean
from lakehouse.rules.conform import conform
from lakehouse.session import evaluation_for
from lakehouse.sources.columns import LINEAGE
from lakehouse.sources.files import RawDay, discover, with_checksum
from lakehouse.sources.reader import new_columns
from lakehouse.specs import models as m
from lakehouse.specs.cleaning_steps.rows import superseded
from lakehouse.specs.dataset_checks import kind_of
from lakehouse.sql import column
from lakehouse.tables.engine import TableEngine
from lakehouse.tables.paths import sweep
from lakehouse.tables.view import LakeView


@dataclass(frozen=True)
class SilverSource:
    """The rows for silver (persisted, except a large batch's of a table without history) and the values of its
    partition and gold date columns."""

    df: DataFrame
    values: dict[str, list[Any]]


class DatasetLoad:
    """Loads one dataset for a batch of run dates through the table engine: `run` is the sequence of stages, each
    taking what the one before returned; `outcomes` (one per run date) gather the counts as they are known."""

    def __init__(self, engine: TableEngine, spec: m.DatasetSpec, run_ids: dict[dt.date, str],
                 ingested_at: dt.datetime, gold_dates: dict[str, str], from_bronze: bool = False,
                 ingested_state: dict[tuple[str, str], dict[str, Any]] | None = None, reload: bool = False) -> None:
        self.engine = engine
        self.spark = engine.spark
        self.lake = engine.layout
        self.spec = spec
        self.run_ids = run_ids  # run date -> the run id its rows and records carry
        self.dates = sorted(run_ids)
        self.batch_id = run_ids[self.dates[-1]]  # names the batch's staging and its silver MERGE
        self.ingested_at = ingested_at
        self.gold_dates = gold_dates  # aggregation built from this dataset -> its date column
        self.gold_date_columns = sorted(set(gold_dates.values()))
        self.history_keys: list[str] = []  # the keys (as `_entity`) whose history the batch rebuilds
        self.from_bronze = from_bronze
        # the ingested-file log's latest row per file of these raw days (read once per batch by the job)
        self.ingested_state = ingested_state or {}
        self.reload = reload  # a forced reload: a file is the same only by its content, a rejected one is retried
        self.outcomes = {d: DatasetOutcome(spec.name, d) for d in self.dates}
        self.loaded: list[dt.date] = []  # the days whose rows were checked
        self.checked_rows: DataFrame | None = None  # those rows, conformed, cleaned and checked (see `check`)
        self.shared = DatasetOutcome(spec.name, self.dates[-1])  # times the stages the days share

    def staging(self, *parts: str) -> str:
        return self.lake.staging(self.batch_id, self.spec.name, *parts)

    def timed(self, stage: str) -> contextlib.AbstractContextManager[None]:
        """Time a stage the days share; its seconds are split evenly over the checked days' outcomes."""
        return self.shared.timed(stage)

    def share_timings(self) -> None:
        days = self.loaded or self.dates  # a failure before the checks: every day of the batch shares it
        for day in days:
            out = self.outcomes[day]
            for stage, seconds in self.shared.timings.items():
                out.timings[stage] = round(out.timings.get(stage, 0.0) + seconds / len(days), 3)
            out.failed_stage = out.failed_stage or self.shared.failed_stage

    # ------------------------------------------------------------------ stages

    def run(self) -> dict[dt.date, DatasetOutcome]:
        try:
            return self.stages()
        finally:
            if self.checked_rows is not None:
                self.checked_rows.unpersist()
            self.share_timings()
            sweep(self.staging())  # on any storage: the next dataset's work is not left beside this one's

    def stages(self) -> dict[dt.date, DatasetOutcome]:
        faults.point("dataset:start")
        check_lease(self.engine.layout.root)  # a run whose lease was taken over stops before it writes
        found = {} if self.from_bronze else self.discover_days()
        # a small batch takes the small path (session.evaluation_for): bronze and the checks by what they read
        with evaluation_for(self.spark, self.input_bytes(found)) as small:
            checked = self.checked(found, small)
        if checked is None:
            return self.outcomes
        checked_df, stats = checked
        passing = [d for d in self.loaded if self.passes(d, stats[d])]
        if not passing:
            return self.outcomes
        values = {c: list(dict.fromkeys(v for d in passing for v in stats[d].values[c])) for c in self.value_columns}
        # the MERGE by what it reads: the checked rows and silver's partitions they fall in
        held = self.engine.size(self.lake.silver(self.spec.name),
                                {c: values[c] for c in self.spec.target.partition_by})
        checked_bytes = estimated_bytes(checked_df)
        with evaluation_for(self.spark, None if checked_bytes is None else held + checked_bytes):
            with self.timed("silver_source"):
                source = self.silver_source(checked_df, passing, stats, values)
            try:
                with self.timed("silver"):
                    self.merge_silver(source, passing, stats)
            finally:
                source.df.unpersist()
        return self.outcomes

    def checked(self, found: dict[dt.date, RawDay], small: bool = False
                ) -> tuple[DataFrame, dict[dt.date, DayStats]] | None:
        """Bronze, the checks, their measures and the quarantine: the checked rows and each day's figures (None
        when no day has rows to check). `small`: the batch takes the small path (see `check`)."""
        loaded = self.bronze_as_held() if self.from_bronze else self.bronze_from_raw(found)
        self.loaded = sorted(loaded)
        if not loaded:
            return None
        spec = self.spec
        extras: list[str] = []
        for day, raw_columns in sorted(loaded.items()):
            out = self.outcomes[day]
            out.raw_columns = raw_columns
            out.new_columns = new_columns(spec, raw_columns)
            extras += [c for c in out.new_columns if spec.on_new_columns == "add" and c not in extras]
        checked = self.check(extras, small)
        checking = {d: self.outcomes[d] for d in self.loaded}
        with self.timed("measure"):
            stats = measure(spec, checked, checking, self.value_columns)
        with self.timed("quarantine"):
            write_quarantine(self.engine, spec, {d: self.run_ids[d] for d in self.loaded}, checked,
                             {d: o.rows_quarantined for d, o in checking.items()})
        faults.point("quarantine:written")
        return checked, stats

    def input_bytes(self, found: dict[dt.date, RawDay]) -> int:
        """What bronze and the checks read, in bytes on disk: the batch's raw files (or bronze partitions, on a
        refresh) and the silver tables the checks look up."""
        lake = self.lake
        size = sum(f.size for day in found.values() for f in day.files)
        size += sum(self.engine.size(lake.silver(ref)) for ref in self.spec.references())
        if self.from_bronze:
            size += self.engine.size(lake.bronze(self.spec.name), {DAY: self.dates})
        return size

    def passes(self, day: dt.date, stats: DayStats) -> bool:
        out = self.outcomes[day]
        try:
            gate(self.spec, out, stats, self.previous_rows_read(day),
                 colliding_keys=lambda: self.colliding_keys(day), bad_files=lambda: self.bad_file_failure(out))
        except DatasetFailed as failed:
            out.status, out.message = "failed", str(failed)
            self.hold_back(out)
            return False
        return True

    def bronze_as_held(self) -> dict[dt.date, list[str]]:
        """Full refresh: silver is rebuilt from what bronze already holds; raw files are not read."""
        bronze = self.engine.read_or_none(self.lake.bronze(self.spec.name))
        if bronze is None:
            for out in self.outcomes.values():
                out.status, out.message = "no_data", "no bronze table"
            return {}
        columns = [c for c in bronze.columns if c not in LINEAGE]
        return {day: columns for day in self.dates}

    def discover_days(self) -> dict[dt.date, RawDay]:
        """Each run date's raw files (a day with none is `no_data`): the days with files."""
        found_days = {}
        for day in self.dates:
            out = self.outcomes[day]
            with out.timed("read"):
                found = discover(self.spec, self.lake, day)
            out.files, out.skipped = len(found.files), list(found.skipped)
            if not found.files:
                out.status, out.message = "no_data", f"no raw files in {found.folder}"
                continue
            found_days[day] = found
        return found_days

    def bronze_from_raw(self, found_days: dict[dt.date, RawDay]) -> dict[dt.date, list[str]]:
        """Each day's raw files into its bronze partition (one commit for the days), or, for a day whose files are
        exactly as last ingested, bronze as it is: run date -> the raw columns read, for the days with rows to
        check."""
        loaded: dict[dt.date, list[str]] = {}
        to_load = []
        bronze_exists = self.engine.exists(self.lake.bronze(self.spec.name))
        current = reuse.load_state(self.engine, self.spec) if bronze_exists else None
        for day, found in found_days.items():
            out = self.outcomes[day]
            known = ingested.unchanged_since_ingest(self.ingested_state, self.spec.name, found.files,
                                                    self.reload) if bronze_exists else None
            if known is not None:
                # the same bytes are in bronze already: rebuild silver from there, do not parse them again
                out.raw_files, out.rejected, out.bronze_reused = known.read, known.rejected, True
                if self.unchanged(day, [f.path for f in found.files], current):
                    continue  # and nothing else changed either: the day's last load stands
                loaded[day] = known.columns
            else:
                to_load.append(found)
        if not to_load:
            return loaded
        with self.timed("read"):  # each file's digest, before its rows are read
            to_load = [replace(found, files=[with_checksum(f) for f in found.files]) for found in to_load]
        with self.timed("bronze"):
            written = load_bronze_days(self.engine, self.spec, to_load, self.run_ids, self.ingested_at,
                                       self.staging("raw"))
        faults.point("bronze:written")
        for day, bronze in written.items():
            out = self.outcomes[day]
            out.raw_files, out.rejected = bronze.read, bronze.rejected
            if bronze.rows:
                loaded[day] = bronze.columns
                continue
            out.raw_columns = bronze.columns
            out.message = "no readable raw file"
            if out.rejected and self.spec.on_bad_file == "fail":
                out.status, out.message = "failed", self.bad_file_failure(out)
                out.failed_stage = "bronze"
                self.hold_back(out)
        return loaded

    def unchanged(self, day: dt.date, paths: list[str], current: str | None) -> bool:
        """Whether the day's last load logged these files with the `current` state: then its recorded outcome is
        the day's (see pipeline.reuse) and nothing is loaded again."""
        run_id = reuse.last_load(self.ingested_state, self.spec.name, paths, current)
        recorded = reuse.recorded_outcome(self.engine, self.spec.name, day, run_id) if run_id else None
        if recorded is None or not reuse.still_true(self.spec, recorded):
            return False
        out = self.outcomes[day]
        recorded.files, recorded.skipped = out.files, out.skipped
        recorded.raw_files, recorded.rejected, recorded.bronze_reused = out.raw_files, out.rejected, True
        recorded.timings = out.timings
        self.outcomes[day] = recorded
        return True

    def state(self) -> str | None:
        """The load state now (after this load's writes), for the ingested-file log."""
        return reuse.load_state(self.engine, self.spec)

    @staticmethod
    def hold_back(out: DatasetOutcome) -> None:
        """The day failed: its valid rows are held back (none reach silver)."""
        out.rows_duplicate = 0
        out.rows_held_back = out.rows_read - out.rows_quarantined

    @staticmethod
    def bad_file_failure(out: DatasetOutcome) -> str:
        shown = "; ".join(f"{r.file.path}: {r.reason}" for r in out.rejected[:3])
        more = f" (and {len(out.rejected) - 3} more)" if len(out.rejected) > 3 else ""
        return f"{len(out.rejected)} raw file(s) cannot be read (on_bad_file: fail): {shown}{more}"

    def bronze_days(self) -> DataFrame:
        return self.engine.read(self.lake.bronze(self.spec.name), partitions={DAY: self.loaded})

    def references(self) -> dict[str, DataFrame | None]:
        return {ref: self.engine.read_or_none(self.lake.silver(ref)) for ref in self.spec.references()}

    def check(self, extras: list[str], small: bool = False) -> DataFrame:
        """The days' bronze rows conformed, cleaned and checked, computed once for every stage that reads them
        (measure, quarantine, silver): written to staging and read back, or, for a `small` batch, cached by
        Spark (memory, else disk) as `measure` computes them, which spares a Parquet write, its commit and a
        schema read (a Spark job each) per dataset."""
        spec = self.spec
        prepared = (self.bronze_days()
                    .transform(conform(spec, extras))
                    .transform(clean(spec.cleaning))
                    .transform(evaluate(spec, self.references(), now=self.ingested_at)))
        if small:
            self.checked_rows = prepared.persist(StorageLevel.MEMORY_AND_DISK)
            return self.checked_rows
        with self.timed("check"):
            prepared.write.mode("overwrite").parquet(self.staging("checked"))
        # read with the schema it was written with: no Spark job to read it back from the files' footers
        self.checked_rows = self.spark.read.schema(prepared.schema).parquet(self.staging("checked"))
        return self.checked_rows

    def colliding_keys(self, day: dt.date, limit: int = 10) -> list[dict[str, Any]]:
        keys = [column(k) for k in self.spec.batch_keys]
        checked = self.checked_rows
        assert checked is not None, "the keys collide among checked rows"
        rows = (checked.where(~has_error() & ~superseded(checked) & (F.col(DAY) == F.lit(day)))
                .groupBy(*keys).count().where("count > 1").orderBy(*keys).limit(limit).collect())
        return [{k: r[k] for k in self.spec.batch_keys} for r in rows]

    def previous_rows_read(self, day: dt.date) -> int | None:
        """Rows read by the latest successful load of this dataset for an earlier run date: an earlier day of this
        batch that passed, else the run log."""
        if not any(kind_of(c).previous for c in self.spec.dataset_checks):
            return None
        earlier = [d for d in self.loaded if d < day and self.outcomes[d].status == "ok"]
        runs = LakeView(self.lake.root).meta_rows("runs", (pc.field("run_date") < day) & (
            pc.field("layer") == "silver") & (pc.field("name") == self.spec.name) & (pc.field("status") == "ok"))
        logged = max(runs, key=lambda r: (r["run_date"], r["finished_at"]), default=None)
        if earlier and (logged is None or logged["run_date"] <= earlier[-1]):
            return self.outcomes[earlier[-1]].rows_read
        return None if logged is None else int(logged["rows_read"])

    # ------------------------------------------------------------------ writes

    @property
    def value_columns(self) -> list[str]:
        """The columns whose values in the batch the MERGE needs: silver's partition columns (to prune the target)
        and the gold date columns (the dates to recompute)."""
        return list(dict.fromkeys(self.spec.target.partition_by + self.gold_date_columns))

    def silver_source(self, checked: DataFrame, days: list[dt.date], stats: dict[dt.date, DayStats],
                      values: dict[str, list[Any]]) -> SilverSource:
        """The rows for silver from the passing days: valid, not superseded, one per key (the latest, a later day
        before an earlier one), with their content hash. When `measure` found every key of a one-day batch once,
        nothing needs resolving."""
        valid, business = valid_rows(checked, days)
        if self.spec.history is not None:
            return self.history_source(valid, business, days, stats, values)
        # one day whose keys are all distinct (the daily run, mostly) needs no ranking; several days may share keys
        day = days[0]
        unique = len(days) == 1 and stats[day].keys == (
            self.outcomes[day].rows_read - self.outcomes[day].rows_quarantined - stats[day].superseded)
        # large: not kept; the comparison and the write each scan the checked staging Parquet column-pruned, cheaper
        # than a copy of every row on disk. Small: kept; its jobs' planning and ranking cost more than the copy
        source = ((valid if unique else one_per_key(self.spec, valid))
                  .select(*[column(c) for c in business], *SILVER_LINEAGE, ROW_HASH))
        if is_small(valid):
            source = source.persist(StorageLevel.DISK_ONLY)
        return SilverSource(source, values)

    def history_source(self, valid: DataFrame, business: list[str], days: list[dt.date],
                       stats: dict[dt.date, DayStats], values: dict[str, list[Any]]) -> SilverSource:
        """A history table's rows for silver: every version of the keys the batch carries, rebuilt from silver's
        versions of them and the batch's (pipeline.history), persisted on disk."""
        spec = self.spec
        new = history.incoming(spec, valid).withColumn(history.ENTITY, history.entity(spec.keys)).persist(
            StorageLevel.DISK_ONLY)
        try:
            self.history_keys = history.touched_entities(new)
            replaced = ({"_source_date": days} if self.from_bronze else
                        {"_source_file": sorted({f for day in days for f in stats[day].source_files})})
            held = history.held_versions(self.engine.read_or_none(self.lake.silver(spec.name)), self.history_keys,
                                         replaced)
            source = history.rebuild(spec, new, held, business).persist(StorageLevel.DISK_ONLY)
            source.count()  # computed while the batch's versions are at hand
        finally:
            new.unpersist()
        return SilverSource(source, values)

    def merge_silver(self, source: SilverSource, days: list[dt.date], stats: dict[dt.date, DayStats]) -> None:
        """One MERGE for the passing days. Its result is recorded with the last of them (the MERGE is one commit);
        every day keeps its own rows to silver."""
        spec, values = self.spec, source.values
        for day in days:
            out = self.outcomes[day]
            out.rows_to_silver = out.rows_read - out.rows_quarantined - out.rows_duplicate
        files = sorted({f for day in days for f in stats[day].source_files})
        extras = any(c for day in days for c in self.outcomes[day].new_columns if spec.on_new_columns == "add")
        # a dataset that starts rescuing values gains silver's `_rescued_data` column
        rescue = spec.on_type_mismatch == "rescue"
        evolve = bool(extras) or rescue
        plan = (history.history_plan(spec, self.history_keys, evolve) if spec.history is not None else
                silver_plan(spec, values, files, days, self.from_bronze, evolve_schema=evolve))
        faults.point("silver:before")
        owed = {name: values[date_column] for name, date_column in self.gold_dates.items()}
        result = self.engine.merge_replacing(source.df, self.lake.silver(spec.name), plan,
                                             before_write=lambda: pending_gold.record(self.engine, self.batch_id,
                                                                                      owed))
        faults.point("silver:written")
        last = self.outcomes[days[-1]]
        last.merge = result
        if result.inserted or result.updated or result.deleted:
            last.affected_dates = {c: sorted({v for v in values[c] if v is not None})
                                   for c in self.gold_date_columns}
