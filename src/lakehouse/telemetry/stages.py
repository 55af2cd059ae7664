"""Stage events: one log record per stage, carrying its facts as record attributes (the JSON log's fields).

Fields of every stage event: event ("stage"), run_id, run_date, dataset (the dataset or gold table; none for
meta), stage, rows_in, rows_out, duration_s, status; a failed stage adds error (the cause in one line) and stack
(the stack trace, when there was an exception). Rows per stage:

    read        rows in the day's raw files (files: how many)
    bronze      rows read -> rows kept in bronze (status reused when the same bytes were there already)
    check       rows read -> rows that passed every error-level check
    quarantine  rows read -> rows quarantined
    silver      valid rows that are not duplicates -> rows merged into silver
    gold        -> rows of the gold table's recomputed dates (dates: which)
    meta        -> rows appended to the _meta tables
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lakehouse.telemetry import RunInfo, Sink

if TYPE_CHECKING:
    from lakehouse.results import DatasetOutcome, DayResult, GoldOutcome
    from lakehouse.specs.models import AggregationSpec, DatasetSpec

STAGES = ("read", "bronze", "check", "quarantine", "silver")
# the outcome's timed steps, by the stage they belong to
_STEPS = {"read": ("read",), "bronze": ("bronze",), "check": ("check", "measure"), "quarantine": ("quarantine",),
          "silver": ("silver_source", "silver")}

stage_log = logging.getLogger("lakehouse.stage")


def stack_of(error: BaseException | None) -> str | None:
    return "".join(traceback.format_exception(error)).rstrip() if error is not None else None


def dataset_stages(outcome: DatasetOutcome, error: BaseException | None = None) -> list[dict[str, Any]]:
    """The stage events of one dataset's load, in stage order: the stages it reached, the failed one marked."""
    o = outcome
    valid = o.rows_read - o.rows_quarantined
    rows = {"read": (None, o.rows_read), "bronze": (o.rows_read, o.rows_read), "check": (o.rows_read, valid),
            "quarantine": (o.rows_read, o.rows_quarantined), "silver": (valid - o.rows_duplicate, o.rows_to_silver)}
    seconds = {stage: sum(o.timings[s] for s in steps if s in o.timings) if any(s in o.timings for s in steps)
               else None for stage, steps in _STEPS.items()}
    reached = [s for s in STAGES if seconds[s] is not None]
    failed = None
    if o.status == "failed":
        failed = next((s for s, steps in _STEPS.items() if o.failed_stage in steps), None)
        if failed is None:  # failed between timed steps (a dataset check, an unreadable day): the next stage
            later = [s for s in STAGES if not reached or STAGES.index(s) > STAGES.index(reached[-1])]
            failed = later[0] if later else reached[-1]
    events = []
    for stage in STAGES:
        if stage not in reached and stage != failed:
            continue
        status = "failed" if stage == failed else "ok"
        if stage == "bronze" and o.bronze_reused and status == "ok":
            status = "reused"
        if stage == "read" and o.status == "no_data":
            status = "no_data"
        rows_in, rows_out = rows[stage]
        event = {"event": "stage", "dataset": o.dataset, "stage": stage, "rows_in": rows_in,
                 "rows_out": 0 if status == "failed" and stage == "silver" else rows_out,
                 "duration_s": round(seconds[stage] or 0.0, 3), "status": status}
        if stage == "read":
            event["files"] = o.files
        if status == "failed":
            event["error"] = o.message
            event["stack"] = stack_of(error)
        events.append(event)
    return events


def _emit(run: RunInfo, event: dict[str, Any]) -> None:
    event = {**event, "run_id": run.run_id, "run_date": run.run_date.isoformat()}
    level = logging.ERROR if event.get("status") == "failed" else logging.INFO
    # a dataset's stages are logged once per run date: the text line names the date
    what = " ".join(str(event[k]) for k in ("stage", "dataset", "run_date") if event.get(k))
    stage_log.log(level, "%s: %s", what or event["event"], event.get("status"), extra=event)


class StageLog(Sink):
    """Logs the stage events through the `lakehouse.stage` logger."""

    name = "stage log"

    def run_started(self, run: RunInfo) -> None:
        _emit(run, {"event": "run", "stage": "run", "status": "started", "engine": run.engine,
                    "lake_root": run.lake_root})

    def dataset_finished(self, run: RunInfo, spec: DatasetSpec, outcome: DatasetOutcome,
                         error: BaseException | None, tables: Mapping[str, str]) -> None:
        for event in dataset_stages(outcome, error):
            _emit(run, event)

    def gold_finished(self, run: RunInfo, agg: AggregationSpec, gold: GoldOutcome, error: BaseException | None,
                      tables: Mapping[str, str]) -> None:
        event = {"event": "stage", "dataset": agg.name, "stage": "gold", "rows_in": None, "rows_out": gold.rows,
                 "duration_s": round(gold.seconds, 3), "status": gold.status,
                 "dates": [d.isoformat() for d in gold.dates]}
        if gold.status == "failed":
            event.update(error=gold.message, stack=stack_of(error))
        _emit(run, event)

    def meta_written(self, run: RunInfo, seconds: float, rows: int, error: BaseException | None) -> None:
        event = {"event": "stage", "dataset": None, "stage": "meta", "rows_in": rows,
                 "rows_out": 0 if error else rows, "duration_s": round(seconds, 3),
                 "status": "failed" if error else "ok"}
        if error is not None:
            from lakehouse.errors import describe

            event.update(error=describe(error), stack=stack_of(error))
        _emit(run, event)

    def run_finished(self, run: RunInfo, result: DayResult, finished: dt.datetime) -> None:
        _emit(run, {"event": "run", "stage": "run", "status": "failed" if result.failed else "ok",
                    "duration_s": round((finished - run.started).total_seconds(), 3),
                    "rows_in": sum(o.rows_read for o in result.datasets),
                    "rows_out": sum(o.rows_to_silver for o in result.datasets)})
