"""Prometheus metrics of a run, pushed to a Pushgateway as the run ends (a batch job is gone before a scrape).

One push per dataset and gold table, grouped by `dataset` (or `table`), and one of the run's own series (grouped
by `scope="run"`). Pushes add to a group (POST): a metric pushed replaces the one of its name, the others stay, so
a run that loads some datasets only (`--pending`) leaves the others' values, and a failed run leaves the last
success timestamp where it was. Metric names: see `docs/telemetry.md`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

from lakehouse.telemetry import RunInfo, Sink
from lakehouse.telemetry.stages import STAGES, dataset_stages

if TYPE_CHECKING:
    from lakehouse.results import DayResult

PUSH_TIMEOUT_SECONDS = 5.0


def _epoch(moment: dt.datetime) -> float:
    return moment.replace(tzinfo=dt.UTC).timestamp() if moment.tzinfo is None else moment.timestamp()


class PushgatewaySink(Sink):
    name = "Pushgateway metrics"

    def __init__(self, gateway: str, job: str = "lakehouse") -> None:
        self.gateway = gateway
        self.job = job

    def _push(self, registry: CollectorRegistry, grouping: dict[str, str]) -> None:
        pushadd_to_gateway(self.gateway, job=self.job, registry=registry, grouping_key=grouping,
                        timeout=PUSH_TIMEOUT_SECONDS)

    def run_finished(self, run: RunInfo, result: DayResult, finished: dt.datetime) -> None:
        run_day = _epoch(dt.datetime.combine(run.run_date, dt.time()))
        for o in result.datasets:
            registry = CollectorRegistry()

            def gauge(name: str, text: str, value: float, registry: CollectorRegistry = registry) -> None:
                Gauge(f"lakehouse_dataset_{name}", text, registry=registry).set(value)

            gauge("run_date_timestamp_seconds", "the run date of the last run (midnight UTC)", run_day)

            gauge("rows_read", "rows in the raw files read", o.rows_read)
            gauge("rows_quarantined", "rows that failed an error-level check", o.rows_quarantined)
            gauge("rows_duplicate", "rows superseded by a later row with the same key", o.rows_duplicate)
            gauge("rows_merged", "rows merged into silver", o.rows_to_silver)
            gauge("files_rejected", "raw files that could not be read", len(o.rejected))
            gauge("failed", "1 when the dataset failed in this run", 1 if o.status == "failed" else 0)
            score = next((q.observed for q in o.quality if q.check == "quality_score"), None)
            if score is not None:
                gauge("quality_score", "share of rows passing every row check", float(score))
            seconds = Gauge("lakehouse_dataset_stage_duration_seconds", "wall-clock seconds per stage", ["stage"],
                            registry=registry)
            for event in dataset_stages(o):
                if event["stage"] in STAGES:
                    seconds.labels(event["stage"]).set(event["duration_s"])
            if o.status == "ok":
                gauge("last_success_timestamp_seconds", "end of the last run that loaded the dataset",
                      _epoch(finished))
            self._push(registry, {"dataset": o.dataset})
        for g in result.golds:
            registry = CollectorRegistry()
            for name, text, value in (("rows", "rows of the recomputed dates", g.rows),
                                      ("dates", "dates recomputed", len(g.dates)),
                                      ("duration_seconds", "wall-clock seconds", g.seconds),
                                      ("failed", "1 when the table failed in this run", int(g.status == "failed"))):
                Gauge(f"lakehouse_gold_{name}", text, registry=registry).set(value)
            if g.status == "ok":
                Gauge("lakehouse_gold_last_success_timestamp_seconds", "end of the last run that updated it",
                      registry=registry).set(_epoch(finished))
            self._push(registry, {"table": g.table})
        registry = CollectorRegistry()
        for name, text, value in (
                ("duration_seconds", "wall-clock seconds of the run", (finished - run.started).total_seconds()),
                ("failed", "1 when a dataset or gold table failed", int(result.failed)),
                ("end_timestamp_seconds", "end of the run", _epoch(finished)),
                ("run_date_timestamp_seconds", "the run date (midnight UTC)", run_day)):
            Gauge(f"lakehouse_run_{name}", text, ["engine"], registry=registry).labels(run.engine).set(value)
        if not result.failed:
            Gauge("lakehouse_run_last_success_timestamp_seconds", "end of the last run without a failure",
                  registry=registry).set(_epoch(finished))
        self._push(registry, {"scope": "run"})
