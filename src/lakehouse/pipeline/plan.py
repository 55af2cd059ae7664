"""`lakehouse plan`: what a run would read and write, computed without writing anything (`report.plan_text`
prints it).

For each dataset: the raw files it would read, the tables it would write, and the dates of the gold tables it
would recompute (the date column of the day's cleaned rows: one read-only Spark job per dataset).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import functions as F

from lakehouse.pipeline import ingested
from lakehouse.rules.cleaning import clean
from lakehouse.rules.conform import conform
from lakehouse.sources.files import RawDay, discover
from lakehouse.sources.reader import DayReader
from lakehouse.specs import Catalog
from lakehouse.specs.models import DatasetSpec
from lakehouse.tables.engine import TableEngine
from lakehouse.tables.paths import sweep


def _gold_dates(engine: TableEngine, catalog: Catalog, spec: DatasetSpec, day: RawDay) -> dict[str, list[Any]]:
    aggs = catalog.aggregations_from(spec.name)
    if not aggs or not day.files:
        return {}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    raw = DayReader(engine.spark, spec, engine.layout.staging("plan", spec.name)).read(day, "plan", now)
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
    gold: dict[str, list[Any]]  # gold table path -> the dates the day's rows hold


@dataclass(frozen=True)
class Plan:
    """What a run would read and write; `run_date` None for --pending (then `days` may hold several)."""

    engine: str
    lake: str
    run_date: dt.date | None
    days: list[tuple[dt.date, list[DatasetPlan]]]
    deleted: list[dict[str, Any]] = field(default_factory=list)  # files gone upstream (--pending)


def _dataset_plan(engine: TableEngine, catalog: Catalog, spec: DatasetSpec, day: RawDay, changed: set[str] | None
                  ) -> DatasetPlan:
    lake = engine.layout
    gold = {lake.gold(table): dates for table, dates in _gold_dates(engine, catalog, spec, day).items()}
    return DatasetPlan(spec.name, day, changed, lake.bronze(spec.name), lake.quarantine(spec.name),
                       lake.silver(spec.name), spec.keys, gold)


def plan_run_date(engine: TableEngine, catalog: Catalog, run_date: dt.date) -> Plan:
    try:
        datasets = [_dataset_plan(engine, catalog, spec, discover(spec, engine.layout, run_date), None)
                    for spec in catalog.dataset_order()]
    finally:
        sweep(engine.layout.staging("plan"))
    return Plan(engine.name, engine.layout.root, run_date, [(run_date, datasets)])


def plan_pending(engine: TableEngine, catalog: Catalog) -> Plan:
    work = ingested.find_pending(engine, catalog)
    days = []
    try:
        for day in work.all_dates():
            datasets = []
            for name in work.datasets_for(day):
                spec = catalog.datasets[name]
                datasets.append(_dataset_plan(engine, catalog, spec, discover(spec, engine.layout, day),
                                              set(work.changed.get(name, []))))
            days.append((day, datasets))
    finally:
        sweep(engine.layout.staging("plan"))
    return Plan(engine.name, engine.layout.root, None, days, list(work.deleted))
