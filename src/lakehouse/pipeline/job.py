"""The daily job: for each run date, load every dataset (dependencies first), recompute the touched gold dates,
record the run. Exit code 0 when every dataset loaded (or had no data), 1 when any failed."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pyspark.sql import functions as F

from lakehouse import faults, retry
from lakehouse.env import env_number
from lakehouse.errors import CommitConflict, describe
from lakehouse.lease import check_lease
from lakehouse.pipeline import gold_inputs, ingested, meta, pending_gold
from lakehouse.pipeline.dataset import DatasetLoad
from lakehouse.pipeline.gold import dates_to_build, every_date, recompute
from lakehouse.pipeline.measure import empty_day_fails
from lakehouse.results import DatasetOutcome, DayResult, GoldOutcome
from lakehouse.session import a_run, small_input_bytes
from lakehouse.sources.files import partition_folder
from lakehouse.specs import Catalog
from lakehouse.specs import models as m
from lakehouse.sql import in_list
from lakehouse.tables.engine import TableEngine
from lakehouse.tables.paths import join, sweep
from lakehouse.telemetry import RunInfo, Telemetry

log = logging.getLogger(__name__)


def default_run_date(now: dt.datetime | None = None) -> dt.date:
    """Yesterday in UTC: the scheduler passes no date."""
    now = now or dt.datetime.now(dt.UTC)
    return (now.astimezone(dt.UTC) - dt.timedelta(days=1)).date()


def _as_date(text: str) -> dt.date | str:
    """An owed gold date back from its ISO text (values of a non-date column stay text)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return text


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


CONFLICT_RETRIES = 3
BATCH_DAYS = 7  # run dates per batch by default (LAKEHOUSE_BATCH_DAYS)
T = TypeVar("T")


def with_conflict_retries(action: Callable[..., T], what: str) -> T:
    """Run `action`; on a commit conflict, or a failure of the network or object store that passes by itself
    (lakehouse.retry.TRANSIENT), run it again: every stage is idempotent, so a retry applies only what the other
    writer, or the failed try, has not. Conflicts are tried CONFLICT_RETRIES times, transient failures
    LAKEHOUSE_RETRIES times with backoff."""
    conflicts, transient = 0, 0
    while True:
        try:
            return action()
        except CommitConflict as exc:
            conflicts += 1
            if conflicts == CONFLICT_RETRIES:
                raise
            log.warning("%s: %s; retrying (%d/%d)", what, exc, conflicts, CONFLICT_RETRIES - 1)
        except Exception as exc:
            cause = retry.transient_cause(exc)
            transient += 1
            if cause is None or transient >= retry.tries():
                raise
            wait = retry.delay(transient)
            log.warning("%s: %s (try %d of %d); trying again in %.1f s", what, cause, transient, retry.tries(),
                        wait)
            time.sleep(wait)


def new_run_id(run_date: dt.date, now: dt.datetime) -> str:
    return f"{run_date:%Y%m%d}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


class DailyJob:
    def __init__(self, engine: TableEngine, catalog: Catalog,
                 progress: Callable[[str], None] | None = None, telemetry: Telemetry | None = None,
                 batch_days: int | None = None) -> None:
        self.engine = engine
        self.catalog = catalog
        # run dates loaded together (one pass per dataset, one gold build, one commit of records per batch)
        self.batch_days = max(1, batch_days or int(env_number("LAKEHOUSE_BATCH_DAYS", BATCH_DAYS, 1)))
        small_input_bytes()  # a bad LAKEHOUSE_SMALL_INPUT_BYTES fails here, before any data moves
        # stage events, metrics and lineage (telemetry/): what the environment configures
        self.telemetry = telemetry or Telemetry.from_env()
        # told one line per dataset and gold table as each finishes: `[i/n] <run date> <name>: ...`
        self.progress = progress or (lambda line: None)
        self._positions: dict[dt.date, str] = {}
        self._invalid: dict[str, dict[str, str]] = {}
        self._reload: frozenset[str] | None = None

    @a_run
    def _days(self, days: list[dt.date], datasets_for: Callable[[dt.date], list[str]] | None = None,
              from_bronze: bool = False, extra_gold_dates: dict[str, list[dt.date]] | None = None
              ) -> list[DayResult]:
        """Load `days` in batches of at most `batch_days` consecutive run dates (each batch one pass per
        dataset); `extra_gold_dates` go with the last batch."""
        self._positions = {day: f"[{i + 1}/{len(days)}] {day}" for i, day in enumerate(days)}
        batches = [days[i:i + self.batch_days] for i in range(0, len(days), self.batch_days)]
        results = []
        try:
            for n, batch in enumerate(batches):
                results += self.run_batch(batch, datasets_for, from_bronze,
                                          extra_gold_dates if n == len(batches) - 1 else None)
            if batches:
                meta.compact_logs(self.engine)
        finally:
            self.engine.release()
        return results

    def run(self, dates: list[dt.date], reload: frozenset[str] | None = None) -> list[DayResult]:
        """`dates` in batches; with `reload` (dataset names, empty: every dataset) those datasets' raw files are
        taken again, a file judged the same by its content alone (digest or ETag, not times) and a rejected one
        read again: what changed lands; a day whose files and tables are as its last load left them is not
        loaded again, one whose tables changed since is rebuilt from bronze (no new bronze version)."""
        self._reload = reload
        try:
            return self._days(dates)
        finally:
            self._reload = None

    @a_run
    def run_pending(self, since: dt.date | None = None) -> list[DayResult]:
        """Every raw partition with a new or changed file (dated `since` or later), in date order, and the gold
        dates a killed run still owes; files gone upstream are reported."""
        work = ingested.find_pending(self.engine, self.catalog, since)
        days = work.all_dates()
        if not days and self.catalog.aggregations and (
                any(dates for dates, _ in pending_gold.owed(self.engine).values())
                or gold_inputs.stale(self.engine, self.catalog, gold_inputs.recorded(self.engine))):
            # no raw file is pending, but gold is owed dates: a run died between its silver writes and gold, or
            # a silver table changed outside a run (a restore, a DELETE by hand)
            days = [default_run_date()]
        self._invalid = work.invalid  # named in the first batch's run record
        results = self._days(days, work.datasets_for)
        if work.invalid:
            notes = [f"invalid partition folder, not read ({why}): {dataset} {folder}"
                     for dataset, folders in sorted(work.invalid.items()) for folder, why in folders.items()]
            if results:
                results[0].notes += notes
            else:
                results.append(DayResult(new_run_id(default_run_date(), dt.datetime.now(dt.UTC)), default_run_date(),
                                         notes=notes, invalid_folders=work.invalid))
        if work.deleted:
            run_id = results[-1].run_id if results else new_run_id(default_run_date(), dt.datetime.now(dt.UTC))
            ingested.record_deleted(self.engine, work.deleted, run_id)
            notes = [f"raw file deleted upstream (its rows stay in the tables): {r['dataset']} {r['path']}"
                     for r in work.deleted]
            if results:
                results[-1].notes += notes
            else:
                results.append(DayResult(run_id, default_run_date(), notes=notes))
        return results

    def full_refresh(self, dates: list[dt.date] | None) -> list[DayResult]:
        """Rebuild silver and gold from bronze for `dates` (None: everything), without touching bronze or raw.
        Each day's bronze rows are MERGEd as a fresh load: a silver row of that raw day that is not among them
        is deleted, a row that differs is rewritten, and a table that already matches gets no new version."""
        lake = self.engine.layout
        bronze_dates: dict[str, list[dt.date]] = {}
        gold_dates: dict[str, set[dt.date]] = {}
        for spec in self.catalog.dataset_order():
            bronze = self.engine.read_or_none(lake.bronze(spec.name))
            if bronze is None:
                continue
            if dates is not None:
                bronze = bronze.where(F.col("_partition_date").isin(dates))
            bronze_dates[spec.name] = sorted(r[0] for r in bronze.select("_partition_date").distinct().collect())
            silver = self.engine.read_or_none(lake.silver(spec.name))
            if silver is None:
                continue
            # the gold dates of the rows these raw days loaded before: a row the rebuild drops leaves its date
            scope = silver if dates is None else silver.where(F.expr(in_list("_source_date", dates)))
            for agg in self.catalog.aggregations_from(spec.name):
                gold_dates.setdefault(agg.name, set()).update(
                    r[0] for r in scope.select(agg.date_column).distinct().collect() if r[0] is not None)
        days = sorted({d for ds in bronze_dates.values() for d in ds})
        return self._days(days, lambda day: [n for n, ds in bronze_dates.items() if day in ds], from_bronze=True,
                          extra_gold_dates={name: sorted(found) for name, found in gold_dates.items()})

    def orphan_gold_tables(self) -> list[str]:
        """Gold tables in the lake whose aggregation spec is gone (reported, never dropped)."""
        import pyarrow.fs as pafs

        from lakehouse.storage import filesystem

        root = self.engine.layout.gold("")
        try:
            fs, base = filesystem(root)
            entries = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        except (OSError, ValueError):
            return []
        return sorted(e.base_name for e in entries if e.type == pafs.FileType.Directory
                      and not e.base_name.startswith((".", "_")) and e.base_name not in self.catalog.aggregations)

    def run_day(self, run_date: dt.date, datasets: list[str] | None = None, from_bronze: bool = False,
                extra_gold_dates: dict[str, list[dt.date]] | None = None) -> DayResult:
        """One run date (a batch of one)."""
        return self.run_batch([run_date], None if datasets is None else lambda _: datasets, from_bronze,
                              extra_gold_dates)[0]

    @a_run
    def run_batch(self, days: list[dt.date], datasets_for: Callable[[dt.date], list[str]] | None = None,
                  from_bronze: bool = False, extra_gold_dates: dict[str, list[dt.date]] | None = None
                  ) -> list[DayResult]:
        """Load `days` (each run date with its own run id and records): each dataset in one pass over its days,
        then every touched gold date once, then the run records in one commit."""
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        results = {day: DayResult(new_run_id(day, started), day) for day in days}
        last = results[days[-1]]
        batch_id = last.run_id  # every commit of the batch records it (Delta history)
        self.engine.tag_commits(batch_id)
        lake = self.engine.layout
        runs = {day: RunInfo(r.run_id, day, started, lake.root, self.engine.name) for day, r in results.items()}
        for run in runs.values():
            self.telemetry.run_started(run)
        touched: dict[str, set[Any]] = {}  # aggregation -> the gold dates its source rows changed
        # the log's rows of these raw days only: the whole log never reaches the driver
        state = {} if from_bronze else ingested.latest_state(self.engine, None, days)
        for spec in self.catalog.dataset_order():  # a dataset's checks read the silver tables loaded before it
            spec_days = [d for d in days if datasets_for is None or spec.name in datasets_for(d)]
            if not spec_days:
                continue
            reloaded = self._reload is not None and (not self._reload or spec.name in self._reload)
            outcomes, gold_dates = self.load_dataset(spec, {d: results[d].run_id for d in spec_days}, runs, started,
                                                     from_bronze, state, reloaded)
            for day, outcome in sorted(outcomes.items()):
                results[day].datasets.append(outcome)
            for agg, dates in gold_dates.items():
                touched.setdefault(agg, set()).update(dates)
        self.build_gold(last, runs[last.run_date], touched, extra_gold_dates or {})
        last.notes += [f"gold table {name} has no spec in conf/aggregations: kept as it is, no longer updated"
                       for name in self.orphan_gold_tables()]
        results[days[0]].invalid_folders, self._invalid = self._invalid, {}
        self.record_runs(list(results.values()), runs, started, batch_id)
        return list(results.values())

    def load_dataset(self, spec: m.DatasetSpec, run_ids: dict[dt.date, str], runs: dict[dt.date, RunInfo],
                     started: dt.datetime, from_bronze: bool, state: dict[tuple[str, str], dict[str, Any]],
                     reload: bool = False) -> tuple[dict[dt.date, DatasetOutcome], dict[str, list[Any]]]:
        """One dataset over its run dates of the batch: its outcome per date, and aggregation -> the gold dates
        it touched."""
        lake = self.engine.layout
        date_columns = {a.name: a.date_column for a in self.catalog.aggregations_from(spec.name)}
        attempts: list[DatasetLoad] = []

        def load() -> dict[dt.date, DatasetOutcome]:
            attempts.append(DatasetLoad(self.engine, spec, run_ids, started, date_columns, from_bronze=from_bronze,
                                        ingested_state=state, reload=reload))
            return attempts[-1].run()

        error: BaseException | None = None
        sources = {day: lake.bronze(spec.name) if from_bronze else join(
            lake.raw(spec.source.path), partition_folder(spec.source.layout, day)) for day in run_ids}
        for day in run_ids:
            self.telemetry.dataset_started(runs[day], spec, sources[day])
        try:
            outcomes = with_conflict_retries(load, f"dataset {spec.name}")
        except Exception as exc:  # one dataset's failure is recorded; the others still load
            error = exc
            log.error("dataset %s for %s failed: %s", spec.name, _span(list(run_ids)), describe(exc))
            log.debug("dataset %s failed", spec.name, exc_info=True)
            # what happened before the failure (files, rows read) stays in the record
            outcomes = attempts[-1].outcomes if attempts else {d: DatasetOutcome(spec.name, d) for d in run_ids}
            for outcome in outcomes.values():
                if outcome.status == "ok":
                    outcome.status, outcome.message = "failed", describe(exc)
                    outcome.rows_to_silver, outcome.merge = 0, None
                    outcome.rows_held_back = max(
                        outcome.rows_read - outcome.rows_quarantined - outcome.rows_duplicate, 0)
        for outcome in outcomes.values():
            if outcome.status == "no_data" and empty_day_fails(spec, outcome):
                outcome.status = "failed"
        # the files of each day loaded, with the state the load left (a rerun that finds both alike has nothing
        # to do); a day whose files were in bronze already is logged again only when it was loaded again
        left = attempts[-1].state() if attempts and error is None and not from_bronze else None
        logged = [ingested.Loaded(d, run_ids[d], o.raw_files, o.raw_columns, o.rejected, left)
                  for d, o in sorted(outcomes.items())
                  if o.status == "ok" and (o.raw_files or o.rejected) and not o.unchanged_since
                  and (not o.bronze_reused or left is not None)]
        if logged:
            faults.point("ingested:before")
            ingested.record(self.engine, spec.name, logged)
        touched: dict[str, list[Any]] = {}
        for day, outcome in sorted(outcomes.items()):
            tables = {"raw": sources[day], "quarantine": lake.quarantine(spec.name), "silver": lake.silver(spec.name)}
            self.telemetry.dataset_finished(runs[day], spec, outcome, error if outcome.status == "failed" else None,
                                            tables if from_bronze else {**tables, "bronze": lake.bronze(spec.name)})
            log.debug("dataset %s for %s: %s, seconds per stage %s", spec.name, day, outcome.status,
                      outcome.timings)
            self.progress(f"{self._positions.get(day, day)} {spec.name}: {outcome.status}, {outcome.rows_read} "
                          f"read, {outcome.rows_quarantined} quarantined, {outcome.rows_to_silver} to silver "
                          f"({sum(outcome.timings.values()):.1f} s)")
            for name, date_column in date_columns.items():
                touched.setdefault(name, []).extend(outcome.affected_dates.get(date_column, []))
        return outcomes, touched

    def build_gold(self, result: DayResult, run: RunInfo, touched: dict[str, set[Any]],
                   extra_gold_dates: dict[str, list[dt.date]]) -> None:
        """Recompute every gold date the batch changed in silver (and dates owed by runs that died)."""
        lake = self.engine.layout
        owed = pending_gold.owed(self.engine) if self.catalog.aggregations else {}
        built_from = gold_inputs.recorded(self.engine) if self.catalog.aggregations else {}
        for agg in self.catalog.aggregations.values():
            dates = sorted(touched.get(agg.name, set()) | set(extra_gold_dates.get(agg.name, [])))
            owed_dates, owing_runs = owed.get(agg.name, (set(), set()))
            start = time.perf_counter()
            error = None
            self.telemetry.gold_started(run, agg)
            try:
                # dates a run changed in silver and did not get to recompute (it died) are recomputed now
                owed_set: set[Any] = {_as_date(d) for d in owed_dates}
                dates = sorted(set(dates) | owed_set)
                build = dates_to_build(self.engine, agg)
                if build is not None:
                    # a gold table that is new, or whose spec changed, is built for every date silver holds
                    kind, every = build
                    result.notes.append(f"gold table {agg.name} is {kind}: built for {len(every)} date(s)")
                    dates = sorted(set(dates) | set(every))
                # silver changed outside a run (a restore, a DELETE by hand): the dates those changes touch
                drift = gold_inputs.drift(self.engine, self.catalog, agg, built_from)
                result.notes += [f"gold table {agg.name}: {reason}" for reason in drift.reasons]
                extra = every_date(self.engine, agg) if drift.dates is None else drift.dates
                dates = sorted(set(dates) | extra)
                rebuild = build is not None and build[0] == "changed"
                faults.point("gold:before")
                check_lease(self.engine.layout.root)
                versions = gold_inputs.current(self.engine, agg)
                gold = with_conflict_retries(lambda agg=agg, dates=dates, rebuild=rebuild: recompute(
                    self.engine, agg, dates, result.run_date, result.run_id, rebuild), f"gold table {agg.name}")
                faults.point("gold:written")
                pending_gold.settle(self.engine, agg.name, owing_runs, result.run_id)
                gold_inputs.record(self.engine, result.run_id, agg, versions, built_from)
            except Exception as exc:
                error = exc
                log.error("gold table %s failed: %s", agg.name, describe(exc))
                log.debug("gold table %s failed", agg.name, exc_info=True)
                gold = GoldOutcome(agg.name, result.run_date, status="failed", dates=dates, message=describe(exc))
            gold.seconds = round(time.perf_counter() - start, 3)
            result.golds.append(gold)
            self.telemetry.gold_finished(run, agg, gold, error, {
                "gold": lake.gold(agg.name), **{f"silver/{name}": lake.silver(name)
                                             for name in [agg.source_dataset, *[j.dataset for j in agg.joins]]}})
            self.progress(f"{self._positions.get(result.run_date, result.run_date)} gold {agg.name}: "
                          f"{gold.status}, {len(gold.dates)} date(s), {gold.rows} rows ({gold.seconds:.1f} s)")

    def record_runs(self, results: list[DayResult], runs: dict[dt.date, RunInfo], started: dt.datetime,
                    batch_id: str) -> None:
        """The run records of every run date of the batch, in one commit per meta table."""
        finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        faults.point("meta:before")
        rows: tuple[list[dict[str, Any]], ...] = ([], [], [])
        for r in results:
            fresh = [o for o in r.datasets if not o.bronze_reused]  # a reused day's rejections are logged
            rows[0].extend(meta.run_rows(r.run_id, self.engine.name, started, finished, r.datasets, r.golds,
                                         r.invalid_folders, r.run_date))
            rows[1].extend(meta.quality_rows(r.run_id, r.datasets))
            rows[2].extend(meta.rejected_rows(r.run_id, fresh, finished))
        last = runs[results[-1].run_date]
        start = time.perf_counter()
        try:
            meta.record(self.engine, batch_id, *rows)
        except Exception as exc:
            self.telemetry.meta_written(last, time.perf_counter() - start, sum(map(len, rows)), exc)
            raise
        self.telemetry.meta_written(last, time.perf_counter() - start, sum(map(len, rows)))
        sweep(self.engine.layout.staging(batch_id))
        self.engine.tag_commits(None)
        end = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for r in results:
            self.telemetry.run_finished(runs[r.run_date], r, end)


def _span(days: list[dt.date]) -> str:
    return str(days[0]) if len(days) == 1 else f"{days[0]}..{days[-1]}"
