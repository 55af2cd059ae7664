"""`lakehouse plan`: what a run would read and write, computed without writing anything (`report.plan_text`
prints it).

For each dataset: the raw files it would read and the tables it would write, listed without Spark (the raw zone
and `_meta/ingested_files` through delta-rs); with `--gold-dates`, also the dates of the gold tables it would
recompute (the date column of the day's cleaned rows: one read-only Spark job per dataset).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.pipeline import ingested
from lakehouse.rules.cleaning import clean
from lakehouse.rules.conform import conform
from lakehouse.sources.files import RawDay, discover
from lakehouse.sources.reader import DayReader
from lakehouse.specs import Catalog
from lakehouse.specs.models import DatasetSpec
from lakehouse.tables.engine import TableEngine
from lakehouse.tables.paths import LakeLayout, sweep


def _gold_dates(spark: SparkSession, layout: LakeLayout, catalog: Catalog, spec: DatasetSpec, day: RawDay
                ) -> dict[str, list[Any]]:
    aggs = catalog.aggregations_from(spec.name)
    if not aggs or not day.files:
        return {}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    raw = DayReader(spark, spec, layout.staging("plan", spec.name)).read(day, "plan", now)
    if raw.df is None:
        return {a.name: [] for a in aggs}
    rows = raw.df.transform(conform(spec)).transform(clean(spec.cleaning))
    columns = sorted({a.date_column for a in aggs})
    found = {c: sorted(r[0] for r in rows.select(c).where(F.col(c).isNotNull()).distinct().collect())
             for c in columns}
    return {a.name: found[a.date_column] for a in aggs}


@dataclass(frozen=True)
class DatasetPlan:
    """What a run would do for one dataset and one raw day."""

    dataset: str
    day: RawDay
    changed: set[str] | None  # with --pending: the new or changed files (None: every file is read)
    bronze: str
    quarantine: str
    silver: str
    keys: list[str]
    # gold table path -> the dates the day's rows hold (None: not computed, the listing needs no Spark)
    gold: dict[str, list[Any] | None]


@dataclass(frozen=True)
class GoldRecompute:
    """Dates a gold table will recompute whatever the raw zone holds, and why."""

    table: str  # the gold table's path
    why: str
    dates: list[Any] | None  # None: every date
    known: bool = True  # False: the dates need Spark (--gold-dates lists them)


@dataclass(frozen=True)
class Plan:
    """What a run would read and write; `run_date` None for --pending (then `days` may hold several)."""

    engine: str
    lake: str
    run_date: dt.date | None
    days: list[tuple[dt.date, list[DatasetPlan]]]
    deleted: list[dict[str, Any]] = field(default_factory=list)  # files gone upstream (--pending)
    invalid: dict[str, dict[str, str]] = field(default_factory=dict)  # dataset -> folders not a date -> why
    # gold dates to recompute besides those of the raw days: inputs changed outside a run, dates owed (--pending)
    gold: list[GoldRecompute] = field(default_factory=list)


class Planner:
    """Lists what a run would read and write from the raw zone and the lake's own log, without Spark; with a
    Spark session (`spark`), also the gold dates each day's rows hold (one read-only Spark job per dataset)."""

    def __init__(self, catalog: Catalog, layout: LakeLayout, engine_name: str,
                 engine: TableEngine | None = None) -> None:
        self.catalog, self.layout, self.engine_name, self.engine = catalog, layout, engine_name, engine
        self.spark: SparkSession | None = engine.spark if engine is not None else None

    def _dataset(self, spec: DatasetSpec, day: RawDay, changed: set[str] | None) -> DatasetPlan:
        lake = self.layout
        if self.spark is not None:
            dates: dict[str, list[Any] | None] = dict(_gold_dates(self.spark, lake, self.catalog, spec, day))
        else:
            dates = {a.name: None for a in self.catalog.aggregations_from(spec.name)} if day.files else {}
        return DatasetPlan(spec.name, day, changed, lake.bronze(spec.name), lake.quarantine(spec.name),
                           lake.silver(spec.name), spec.keys, {lake.gold(t): d for t, d in dates.items()})

    def run_date(self, run_date: dt.date) -> Plan:
        try:
            datasets = [self._dataset(spec, discover(spec, self.layout, run_date), None)
                        for spec in self.catalog.dataset_order()]
        finally:
            sweep(self.layout.staging("plan"))
        return Plan(self.engine_name, self.layout.root, run_date, [(run_date, datasets)])

    def pending(self, ingested_state: dict[tuple[str, str], dict[str, Any]], since: dt.date | None = None) -> Plan:
        work = ingested.pending_work(self.catalog, self.layout, ingested_state, since)
        days = []
        try:
            for day in work.all_dates():
                datasets = []
                for name in work.datasets_for(day):
                    spec = self.catalog.datasets[name]
                    datasets.append(self._dataset(spec, discover(spec, self.layout, day),
                                                  set(work.changed.get(name, []))))
                days.append((day, datasets))
        finally:
            sweep(self.layout.staging("plan"))
        return Plan(self.engine_name, self.layout.root, None, days, list(work.deleted), work.invalid,
                    self._gold_recomputes())

    def _gold_recomputes(self) -> list[GoldRecompute]:
        """The gold dates owed by runs that stopped before their gold stage, and those that silver tables changed
        outside a run ask for: named from the tables' logs without Spark, dated with it (--gold-dates)."""
        from lakehouse.pipeline import gold_inputs, pending_gold
        from lakehouse.tables.view import LakeView

        view = LakeView(self.layout.root)
        lake = self.layout
        out = [GoldRecompute(lake.gold(name), f"owed by run(s) {', '.join(sorted(runs))}, stopped before gold",
                             sorted(dates))
               for name, (dates, runs) in sorted(pending_gold.owed_from(view.meta_rows("gold_pending")).items())
               if dates and name in self.catalog.aggregations]

        before = gold_inputs.recorded_from(view.meta_rows("gold_inputs"))
        # the table's version from its log, as the job reads it (delta-rs lists no history for a table whose path
        # holds a '#': the version is still right there)
        changes = gold_inputs.stale_inputs(self.catalog, before, lambda name: view.version(f"silver/{name}"),
                                           lambda name, n: view.history(f"silver/{name}", n))
        if self.engine is not None and changes:
            changes = [c for name in sorted({c.aggregation for c in changes})
                       for c in gold_inputs.drift(self.engine, self.catalog, self.catalog.aggregations[name],
                                                  before).changes]
        return out + [GoldRecompute(lake.gold(c.aggregation), c.why, None if c.dates is None else sorted(c.dates),
                                    known=self.engine is not None or c.dates is None) for c in changes]
