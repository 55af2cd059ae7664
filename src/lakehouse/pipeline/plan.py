"""`lakehouse plan`: what a run would read and write, computed without writing anything.

For each dataset: the raw files it would read, the tables it would write, and the dates of the gold tables it
would recompute (the date column of the day's cleaned rows: one read-only Spark job per dataset).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from lakehouse.pipeline import ingested
from lakehouse.rules.cleaning import clean
from lakehouse.rules.conform import conform
from lakehouse.sources.files import RawDay, discover
from lakehouse.sources.reader import DayReader
from lakehouse.specs import Catalog
from lakehouse.specs.models import DatasetSpec
from lakehouse.tables.engine import TableEngine


def _gold_dates(engine: TableEngine, catalog: Catalog, spec: DatasetSpec, day: RawDay) -> dict[str, list]:
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


def _describe(engine: TableEngine, catalog: Catalog, spec: DatasetSpec, day: RawDay, changed: set[str] | None
              ) -> list[str]:
    lake = engine.layout
    size = sum(f.size for f in day.files)
    lines = [f"  {spec.name}: {len(day.files)} file(s), {size:,} bytes from {day.folder}"]
    for f in day.files:
        mark = "" if changed is None else ("  (new or changed)" if f.path in changed else "  (unchanged)")
        lines.append(f"    read {f.path}{mark}")
    lines += [f"    skip {path} (not a data file)" for path in day.skipped]
    if not day.files:
        return lines
    lines.append(f"    replace partition _partition_date={day.date} of {lake.bronze(spec.name)} and "
                 f"{lake.quarantine(spec.name)}")
    lines.append(f"    merge into {lake.silver(spec.name)} by {spec.keys}")
    for table, dates in _gold_dates(engine, catalog, spec, day).items():
        shown = ", ".join(str(d) for d in dates) or "none"
        lines.append(f"    recompute {lake.gold(table)} for those of these {len(dates)} date(s) whose silver rows "
                     f"change: {shown}")
    return lines


def plan_run_date(engine: TableEngine, catalog: Catalog, run_date: dt.date) -> str:
    lines = [f"plan for run date {run_date} (engine {engine.name}, lake {engine.layout.root}); nothing is written"]
    for spec in catalog.dataset_order():
        lines += _describe(engine, catalog, spec, discover(spec, engine.layout, run_date), None)
    return "\n".join(lines)


def plan_pending(engine: TableEngine, catalog: Catalog) -> str:
    work = ingested.find_pending(engine, catalog)
    lines = [f"plan for --pending (engine {engine.name}, lake {engine.layout.root}); nothing is written"]
    if not work.all_dates():
        lines.append("  nothing pending: every raw file is ingested and unchanged")
    for day in work.all_dates():
        lines.append(f" run date {day}:")
        for name in work.datasets_for(day):
            spec = catalog.datasets[name]
            lines += _describe(engine, catalog, spec, discover(spec, engine.layout, day),
                               set(work.changed.get(name, [])))
    for row in work.deleted:
        lines.append(f"  deleted upstream (would be reported, rows kept): {row['dataset']} {row['path']}")
    return "\n".join(lines)
