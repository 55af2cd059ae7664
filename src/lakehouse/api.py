"""The product's public face: everything the command line, the notebooks and the tests do with a lake.

    from lakehouse.api import Lakehouse

    lake = Lakehouse.from_env()               # LAKEHOUSE_ROOT, LAKEHOUSE_ENGINE, LAKEHOUSE_CONF_DIR, ...
    lake.validate()                           # every spec resolved against Spark: what would fail, fails here
    results = lake.run([date(2024, 7, 1)])    # or lake.run_pending(), lake.full_refresh(None)
    lake.read("gold/daily_sales_summary").show()
    lake.history("silver/sales")

Specs are loaded once, before Spark starts (a bad spec costs no JVM); the Spark session and the table engine
start on first use. `Lakehouse(settings, engine=...)` runs on an engine the caller already has (tests, notebooks).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from lakehouse.errors import (
    CommitConflict,
    ConfigError,
    DatasetFailed,
    LakehouseError,
    SettingsError,
    SpecError,
    SqlFragmentError,
    TableError,
    TableNotFound,
    UsageError,
    VersionNotFound,
)
from lakehouse.lease import command_line, writer_lease
from lakehouse.pipeline.job import DailyJob, date_range, default_run_date
from lakehouse.pipeline.plan import Plan
from lakehouse.pipeline.spec_tests import CaseResult, run_spec_tests
from lakehouse.results import DayResult
from lakehouse.settings import Settings
from lakehouse.specs import Catalog, load_catalog
from lakehouse.tables.engine import HistoryEntry, MergeResult, OptimizeResult, TableEngine, VacuumResult
from lakehouse.tables.paths import LakeLayout, join, sweep_older_than
from lakehouse.tables.view import LakeView, RunDetail, RunSummary

__all__ = [
    "META_TABLES", "CommitConflict", "LakeView", "Plan", "RunDetail", "RunSummary", "ConfigError", "DatasetFailed", "DayResult", "HistoryEntry", "Lakehouse",
    "LakehouseError", "MaintenanceResult", "MergeResult", "OptimizeResult", "Settings", "SettingsError",
    "SpecError", "SqlFragmentError", "TableError", "TableNotFound", "UsageError", "VacuumResult",
    "VersionNotFound", "build_engine", "date_range", "default_run_date", "load_catalog",
]

# the lake's own bookkeeping, kept and maintained like every other table
META_TABLES = ("runs", "quality", "ingested_files", "rejected_files", "gold_pending", "gold_inputs")


def build_engine(settings: Settings, app_name: str = "lakehouse", spark: SparkSession | None = None,
                 extra: dict[str, str] | None = None) -> TableEngine:
    """The table engine `settings` choose, on `spark` or on a session built from `settings`."""
    from lakehouse.session import build_session
    from lakehouse.tables import select_engine

    spark = spark or build_session(settings, app_name, extra=extra)
    return select_engine(spark, LakeLayout(settings.lake_root, settings.staging), settings.engine)


def check_secrets(catalog: Catalog, env: dict[str, str] | None = None) -> None:
    """A cleaning step that reads a secret (the hash step's key) needs it in the environment: missing, it is a
    settings error before any work."""
    env = dict(os.environ) if env is None else env
    for name in sorted({e for spec in catalog.datasets.values() for e in spec.secret_envs()}):
        if not env.get(name):
            raise SettingsError(f"a hash cleaning step needs its secret key in the environment variable {name}")


@dataclass(frozen=True)
class MaintenanceResult:
    """One table's maintenance: compaction and vacuum results (None when not asked), or why it was skipped."""

    path: str
    optimized: OptimizeResult | None = None
    vacuumed: VacuumResult | None = None
    skipped: str | None = None
    error: str | None = None
    note: str | None = None


class Lakehouse:
    """A lake (root, engine, specs) and what can be done with it."""

    def __init__(self, settings: Settings | None = None, *, engine: TableEngine | None = None,
                 catalog: Catalog | None = None, app_name: str = "lakehouse",
                 spark_conf: dict[str, str] | None = None, progress: Callable[[str], None] | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.spark_conf = spark_conf
        self.progress = progress  # told a line as each dataset and gold table of a run finishes
        self._engine = engine
        self._catalog = catalog
        self.app_name = app_name

    @classmethod
    def from_env(cls, app_name: str = "lakehouse", **overrides: Any) -> Lakehouse:
        """Settings from the environment, with `overrides` (lake_root, engine, conf_dir) where not None."""
        return cls(Settings.from_env().with_overrides(**overrides), app_name=app_name)

    # ------------------------------------------------------------------ parts, on first use

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.settings.conf_dir)
        return self._catalog

    @property
    def engine(self) -> TableEngine:
        if self._engine is None:
            self._engine = build_engine(self.settings, self.app_name, extra=self.spark_conf)
        return self._engine

    @property
    def spark(self) -> SparkSession:
        return self.engine.spark

    @property
    def layout(self) -> LakeLayout:
        return self.engine.layout if self._engine is not None else LakeLayout(self.settings.lake_root,
                                                                              self.settings.staging)

    # ------------------------------------------------------------------ specs

    def validate(self, resolve: bool = True) -> Catalog:
        """Load every spec; with `resolve`, resolve every column reference and SQL fragment against Spark."""
        catalog = self.catalog
        if resolve:
            from lakehouse.rules.resolve import resolve_catalog

            resolve_catalog(catalog, self.spark)
        return catalog

    def test_specs(self, datasets: Sequence[str] = ()) -> list[CaseResult]:
        """Run the rule tests (`tests:`) of every dataset spec (of `datasets`) on this session, without the lake:
        the specs are resolved first, as validate-config does. An unknown dataset name is a UsageError."""
        unknown = [d for d in datasets if d not in self.catalog.datasets]
        if unknown:
            raise UsageError(f"no dataset {unknown[0]!r} in {self.settings.conf_dir} "
                             f"(datasets: {', '.join(sorted(self.catalog.datasets))})")
        self.validate()
        return run_spec_tests(self.spark, self.catalog, list(datasets) or None)

    # ------------------------------------------------------------------ the daily job

    def _job(self) -> DailyJob:
        check_secrets(self.catalog)
        self.validate()  # what would fail at run time fails here, before any data moves
        return DailyJob(self.engine, self.catalog, self.progress)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lake's writer lease (lakehouse.lease) for a block that writes tables: one writing process per
        lake at a time; another one waits (LAKEHOUSE_LEASE_WAIT), then fails naming the holder."""
        return writer_lease(self.settings.lake_root, command_line(), tell=self.progress)

    def run(self, dates: Sequence[dt.date], reload: Sequence[str] | None = None) -> list[DayResult]:
        """Load each run date's raw partitions (every dataset), then the gold dates they touched. With `reload`
        (dataset names; empty: all), those datasets' files are read again as if new."""
        if reload:
            unknown = sorted(set(reload) - set(self.catalog.datasets))
            if unknown:
                raise UsageError(f"--reload: no dataset {', '.join(unknown)} in {self.catalog.conf_dir}")
        with self.writing():
            return self._job().run(list(dates), reload=None if reload is None else frozenset(reload))

    def run_pending(self, look_back_days: int | None = None) -> list[DayResult]:
        """Every raw partition with a file not ingested yet or changed since, in date order; with
        `look_back_days`, partitions dated at most that many days before today (UTC)."""
        from lakehouse.pipeline.ingested import look_back

        with self.writing():
            if self.can_answer_without_spark() and self.nothing_pending(look_back_days):
                return []  # answered from the raw listing and the Delta logs: no JVM starts
            return self._job().run_pending(look_back(look_back_days))

    def can_answer_without_spark(self) -> bool:
        """Whether `run_pending` may find out that nothing is pending before Spark starts: not when the session is
        up already (an engine given or built, or a driver under spark-submit, whose JVM runs anyway), nor for
        LAKEHOUSE_ENGINE=jvm, whose configuration (Delta's jars on the classpath) only the JVM can check: a run
        with a broken engine fails, pending work or not."""
        return self._engine is None and "PYSPARK_GATEWAY_PORT" not in os.environ and self.settings.engine != "jvm"

    def nothing_pending(self, look_back_days: int | None = None) -> bool:
        """Whether `run_pending` has nothing to do: no raw file new, changed or gone, no invalid partition folder,
        no gold date owed or asked for by a silver table changed outside a run. Read without Spark."""
        plan = self.plan(pending=True, look_back_days=look_back_days)
        return not (plan.days or plan.deleted or plan.invalid or plan.gold)

    def full_refresh(self, dates: Sequence[dt.date] | None = None) -> list[DayResult]:
        """Rebuild silver and gold from bronze for `dates` (None: everything); raw files are not read."""
        with self.writing():
            return self._job().full_refresh(None if dates is None else list(dates))

    def empty_raw_folders(self) -> dict[str, str]:
        """dataset -> its raw folder, for the datasets whose raw folder is missing or holds no file (no Spark)."""
        import itertools

        from lakehouse.storage import list_objects
        from lakehouse.tables.paths import arrow_uri

        out = {}
        for spec in self.catalog.dataset_order():
            folder = self.layout.raw(spec.source.path)
            if arrow_uri(folder).startswith("s3://"):
                found = next(itertools.islice(list_objects(folder), 1), None) is not None
            elif "://" in folder:
                continue  # another store (file://): its listing is the run's
            else:
                found = os.path.isdir(folder) and any(
                    not name.startswith((".", "_")) for name in os.listdir(folder))
            if not found:
                out[spec.name] = folder
        return out

    def plan(self, run_date: dt.date | None = None, pending: bool = False, gold_dates: bool = False,
             look_back_days: int | None = None) -> Plan:
        """What a run would read and write (`report.plan_text` prints it); nothing is written. The listing needs
        no Spark; `gold_dates` starts Spark to find the gold dates each day's rows hold."""
        from lakehouse.pipeline.ingested import latest_in, look_back
        from lakehouse.pipeline.plan import Planner

        engine_name = self.engine.name if gold_dates or self._engine is not None else self.settings.engine
        planner = Planner(self.catalog, self.layout, engine_name, self.engine if gold_dates else None)
        if pending:
            return planner.pending(latest_in(self.view), look_back(look_back_days))
        return planner.run_date(run_date or default_run_date())

    # ------------------------------------------------------------------ tables

    def path(self, table: str) -> str:
        """A table's path from its name under the lake root, e.g. `silver/sales` or `_meta/runs`."""
        return join(self.settings.lake_root, table)

    def tables(self) -> list[str]:
        """Every table the specs make, plus the `_meta` tables, as names under the lake root."""
        names = []
        for dataset in self.catalog.datasets:
            names += [f"bronze/{dataset}", f"quarantine/{dataset}", f"silver/{dataset}"]
        names += [f"gold/{a}" for a in self.catalog.aggregations]
        names += [f"_meta/{m}" for m in META_TABLES]
        return names

    def read(self, table: str, version: int | None = None) -> DataFrame:
        """A table (current or as of `version`) as a Spark DataFrame."""
        return self.engine.read(self.path(table), version)

    @property
    def view(self) -> LakeView:
        """The lake read without a JVM (history, rows, runs, quality): answers in about a second."""
        return LakeView(self.settings.lake_root)

    def history(self, table: str, limit: int | None = None) -> list[HistoryEntry]:
        """A table's commits, newest first (no Spark session)."""
        return self.view.history(table, limit)

    def runs(self, last: int | None = None) -> list[RunSummary]:
        """The latest runs of the daily job, oldest first (no Spark session)."""
        return self.view.runs(last)

    def run_detail(self, run_id: str) -> RunDetail | None:
        return self.view.run(run_id)

    def restore(self, table: str, version: int) -> int:
        """Make `version` current again (a new commit); returns the new version."""
        with self.writing():
            return self.engine.restore(self.path(table), version)

    def quality(self, run_date: dt.date | None = None) -> tuple[str | None, dt.date | None, list[dict[str, Any]]]:
        """(run id, run date, metric rows) of the latest run of `run_date` (default: the latest run date); no
        Spark session."""
        return self.view.quality(run_date)

    def maintain(self, tables: Sequence[str] = (), optimize: bool = True,
                 vacuum_retention_hours: int | None = None, dry_run: bool = False) -> list[MaintenanceResult]:
        """Compact and/or vacuum `tables` (default: every table of `tables()`). One table's failure is reported
        in its result and does not stop the others. A vacuum of every table also deletes staging folders older
        than the retention (left by runs that were killed)."""
        with contextlib.nullcontext() if dry_run else self.writing():
            return self._maintain(tables, optimize, vacuum_retention_hours, dry_run)

    def _maintain(self, tables: Sequence[str], optimize: bool, vacuum_retention_hours: int | None,
                  dry_run: bool) -> list[MaintenanceResult]:
        results = []
        if vacuum_retention_hours is not None and not tables and not dry_run:
            staging = self.layout.staging()
            swept = sweep_older_than(staging, max(vacuum_retention_hours, 24))
            results.append(MaintenanceResult(staging, note=f"{len(swept)} stale staging folder(s) deleted"))
        for name in tables or self.tables():
            path = self.path(name)
            if not self.engine.exists(path):
                results.append(MaintenanceResult(path, skipped="no table"))
                continue
            try:
                optimized = self.engine.optimize(path) if optimize else None
                vacuumed = None if vacuum_retention_hours is None else self.engine.vacuum(
                    path, vacuum_retention_hours, dry_run=dry_run)
                results.append(MaintenanceResult(path, optimized, vacuumed))
            except Exception as exc:  # reported per table
                from lakehouse.errors import describe

                results.append(MaintenanceResult(path, error=describe(exc)))
        return results
