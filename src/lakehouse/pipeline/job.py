"""The daily job: for each run date, load every dataset (dependencies first), recompute the touched gold dates,
record the run. Exit code 0 when every dataset loaded (or had no data), 1 when any failed."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field

from lakehouse.pipeline import meta
from lakehouse.pipeline.dataset import DatasetLoad, DatasetOutcome
from lakehouse.pipeline.gold import GoldOutcome, recompute
from lakehouse.specs import Catalog
from lakehouse.specs.models import RowCount
from lakehouse.tables.engine import TableEngine

log = logging.getLogger(__name__)


def default_run_date(now: dt.datetime | None = None) -> dt.date:
    """Yesterday in UTC: the scheduler passes no date."""
    now = now or dt.datetime.now(dt.UTC)
    return (now.astimezone(dt.UTC) - dt.timedelta(days=1)).date()


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


@dataclass
class DayResult:
    run_id: str
    run_date: dt.date
    datasets: list[DatasetOutcome] = field(default_factory=list)
    golds: list[GoldOutcome] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.datasets) or any(g.status == "failed" for g in self.golds)


def new_run_id(run_date: dt.date, now: dt.datetime) -> str:
    return f"{run_date:%Y%m%d}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


class DailyJob:
    def __init__(self, engine: TableEngine, catalog: Catalog) -> None:
        self.engine = engine
        self.catalog = catalog

    def run(self, dates: list[dt.date]) -> list[DayResult]:
        return [self.run_day(d) for d in dates]

    def run_day(self, run_date: dt.date) -> DayResult:
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        result = DayResult(new_run_id(run_date, started), run_date)
        touched: dict[str, dict[str, list[dt.date]]] = {}
        for spec in self.catalog.dataset_order():
            date_columns = sorted({a.date_column for a in self.catalog.aggregations_from(spec.name)})
            load = DatasetLoad(self.engine, spec, result.run_id, run_date, started, date_columns)
            try:
                outcome = load.run()
            except Exception as exc:  # one dataset's failure is recorded; the others still load
                log.exception("dataset %s failed", spec.name)
                outcome = load.outcome
                outcome.status = "failed"
                outcome.message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if outcome.status == "no_data" and any(
                    isinstance(c, RowCount) and (c.min or 0) > 0 and c.action == "fail"
                    for c in spec.dataset_checks):
                outcome.status = "failed"
            result.datasets.append(outcome)
            touched[spec.name] = outcome.affected_dates
        for agg in self.catalog.aggregations.values():
            dates = touched.get(agg.source_dataset, {}).get(agg.date_column, [])
            try:
                gold = recompute(self.engine, agg, dates, run_date, result.run_id)
            except Exception as exc:
                log.exception("gold table %s failed", agg.name)
                gold = GoldOutcome(agg.name, run_date, status="failed", dates=dates,
                                   message=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            result.golds.append(gold)
        finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        meta.record(self.engine,
                    meta.run_rows(result.run_id, self.engine.name, started, finished, result.datasets,
                                  result.golds),
                    meta.quality_rows(result.run_id, result.datasets))
        return result


def summary(result: DayResult) -> str:
    """A short per-dataset table for the console."""
    lines = [f"run {result.run_id} for {result.run_date}: {'FAILED' if result.failed else 'ok'}",
             f"  {'dataset':<22}{'status':<9}{'read':>8}{'quar.':>8}{'dupl.':>8}{'held':>7}{'silver':>8}"
             f"{'ins':>7}{'upd':>7}{'same':>7}"]
    for o in result.datasets:
        m = o.merge
        lines.append(f"  {o.dataset:<22}{o.status:<9}{o.rows_read:>8}{o.rows_quarantined:>8}{o.rows_duplicate:>8}"
                     f"{o.rows_held_back:>7}{o.rows_to_silver:>8}{(m.inserted if m else 0):>7}"
                     f"{(m.updated if m else 0):>7}{(m.unchanged if m else 0):>7}"
                     + (f"  {o.message}" if o.message and o.status != "ok" else ""))
    for g in result.golds:
        m = g.merge
        dates = f"{len(g.dates)} date(s)" if g.dates else "-"
        lines.append(f"  gold.{g.table:<17}{g.status:<9}{dates:>16}  rows {g.rows}"
                     + (f" (+{m.inserted} ~{m.updated} -{m.deleted})" if m else "")
                     + (f"  {g.message}" if g.status == "failed" else ""))
    return "\n".join(lines)
