"""The _meta tables: run history (one row per run and table), per-check quality metrics, rejected raw files."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from pyspark.sql import types as T

from lakehouse.env import env_number
from lakehouse.errors import describe
from lakehouse.results import DatasetOutcome, GoldOutcome
from lakehouse.tables.engine import MergeResult, TableEngine

log = logging.getLogger(__name__)

RUNS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()),
    T.StructField("run_date", T.DateType()),
    T.StructField("layer", T.StringType()),
    T.StructField("name", T.StringType()),
    T.StructField("status", T.StringType()),
    T.StructField("message", T.StringType()),
    T.StructField("engine", T.StringType()),
    T.StructField("started_at", T.TimestampType()),
    T.StructField("finished_at", T.TimestampType()),
    T.StructField("files", T.LongType()),
    T.StructField("files_read", T.LongType()),
    T.StructField("files_rejected", T.LongType()),
    T.StructField("files_skipped", T.LongType()),
    T.StructField("rows_read", T.LongType()),
    T.StructField("rows_malformed", T.LongType()),
    T.StructField("rows_quarantined", T.LongType()),
    T.StructField("rows_warned", T.LongType()),
    T.StructField("rows_duplicate", T.LongType()),
    T.StructField("rows_held_back", T.LongType()),
    T.StructField("rows_to_silver", T.LongType()),
    T.StructField("rows_inserted", T.LongType()),
    T.StructField("rows_updated", T.LongType()),
    T.StructField("rows_unchanged", T.LongType()),
    T.StructField("rows_deleted", T.LongType()),
    T.StructField("files_added", T.LongType()),
    T.StructField("files_removed", T.LongType()),
    T.StructField("table_version", T.LongType()),
    T.StructField("new_columns", T.ArrayType(T.StringType())),
    T.StructField("gold_dates", T.ArrayType(T.DateType())),
    T.StructField("invalid_folders", T.ArrayType(T.StringType())),
])

REJECTED_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()),
    T.StructField("run_date", T.DateType()),
    T.StructField("dataset", T.StringType()),
    T.StructField("path", T.StringType()),
    T.StructField("size", T.LongType()),
    T.StructField("modified_at", T.TimestampType()),
    T.StructField("reason", T.StringType()),
    T.StructField("rejected_at", T.TimestampType()),
])

QUALITY_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()),
    T.StructField("run_date", T.DateType()),
    T.StructField("dataset", T.StringType()),
    T.StructField("check", T.StringType()),
    T.StructField("column", T.StringType()),
    T.StructField("criticality", T.StringType()),
    T.StructField("evaluated_rows", T.LongType()),
    T.StructField("failed_rows", T.LongType()),
    T.StructField("observed", T.DoubleType()),
    T.StructField("threshold", T.StringType()),
    T.StructField("status", T.StringType()),
])


def _merge_fields(merge: MergeResult | None) -> dict[str, Any]:
    if merge is None:
        return {}
    return {"rows_inserted": merge.inserted, "rows_updated": merge.updated, "rows_unchanged": merge.unchanged,
            "rows_deleted": merge.deleted, "files_added": merge.files_added, "files_removed": merge.files_removed,
            "table_version": merge.version}


def run_rows(run_id: str, engine: str, started: dt.datetime, finished: dt.datetime,
             datasets: list[DatasetOutcome], golds: list[GoldOutcome],
             invalid: dict[str, dict[str, str]] | None = None, run_date: dt.date | None = None
             ) -> list[dict[str, Any]]:
    """The run record's rows of one run date: one per dataset (layer silver) and gold table, and one per dataset
    with raw partition folders that are not a date (layer raw, status warn, the folders named)."""
    rows = []
    for o in datasets:
        rows.append({
            "run_id": run_id, "run_date": o.run_date, "layer": "silver", "name": o.dataset, "status": o.status,
            "message": o.message, "engine": engine, "started_at": started, "finished_at": finished,
            "files": o.files, "files_read": len(o.raw_files), "files_rejected": len(o.rejected),
            "files_skipped": len(o.skipped), "rows_read": o.rows_read, "rows_malformed": o.rows_malformed,
            "rows_quarantined": o.rows_quarantined, "rows_warned": o.rows_warned,
            "rows_duplicate": o.rows_duplicate, "rows_held_back": o.rows_held_back,
            "rows_to_silver": o.rows_to_silver, "new_columns": o.new_columns, "gold_dates": None,
            **_merge_fields(o.merge)})
    for g in golds:
        rows.append({
            "run_id": run_id, "run_date": g.run_date, "layer": "gold", "name": g.table, "status": g.status,
            "message": g.message, "engine": engine, "started_at": started, "finished_at": finished,
            "gold_dates": g.dates, **_merge_fields(g.merge)})
    for dataset, folders in sorted((invalid or {}).items()):
        rows.append({
            "run_id": run_id, "run_date": run_date, "layer": "raw",
            "name": dataset, "status": "warn", "engine": engine, "started_at": started, "finished_at": finished,
            "message": f"{len(folders)} partition folder(s) whose parts are not a date; not read",
            "invalid_folders": [f"{path} ({why})" for path, why in folders.items()]})
    return [{f.name: r.get(f.name) for f in RUNS_SCHEMA.fields} for r in rows]


def quality_rows(run_id: str, datasets: list[DatasetOutcome]) -> list[dict[str, Any]]:
    rows = []
    for o in datasets:
        for q in o.quality:
            rows.append({"run_id": run_id, "run_date": o.run_date, "dataset": o.dataset, "check": q.check,
                         "column": q.column, "criticality": q.criticality, "evaluated_rows": q.evaluated_rows,
                         "failed_rows": q.failed_rows, "observed": q.observed, "threshold": q.threshold,
                         "status": q.status})
    return rows


def rejected_rows(run_id: str, datasets: list[DatasetOutcome], at: dt.datetime) -> list[dict[str, Any]]:
    rows = []
    for o in datasets:
        for r in o.rejected:
            mtime = r.file.mtime.astimezone(dt.UTC).replace(tzinfo=None) if r.file.mtime and r.file.mtime.tzinfo \
                else r.file.mtime
            rows.append({"run_id": run_id, "run_date": o.run_date, "dataset": o.dataset, "path": r.file.path,
                         "size": int(r.file.size), "modified_at": mtime, "reason": r.reason, "rejected_at": at})
    return rows


def record(engine: TableEngine, run_id: str, run_rows_: list[dict[str, Any]], quality_rows_: list[dict[str, Any]],
           rejected_rows_: Sequence[dict[str, Any]] = ()) -> None:
    """Append the run's records. Each append carries the app transaction (run id, 1): a retried append of the
    same run is skipped instead of duplicating the records."""
    txn = (f"lakehouse-run-{run_id}", 1)
    if run_rows_:
        engine.append_rows(run_rows_, RUNS_SCHEMA, engine.layout.meta("runs"), ["run_date"], txn=txn)
    if quality_rows_:
        engine.append_rows(quality_rows_, QUALITY_SCHEMA, engine.layout.meta("quality"), ["run_date"], txn=txn)
    if rejected_rows_:
        engine.append_rows(list(rejected_rows_), REJECTED_SCHEMA, engine.layout.meta("rejected_files"),
                           ["run_date"], txn=txn)


# the `_meta` logs read by every run, and the data files one may hold before the run that left it so compacts it
LOGS = ("ingested_files", "gold_pending", "gold_inputs")
LOG_MAX_FILES = 32


def compact_logs(engine: TableEngine) -> None:
    """Compact each `_meta` log every run reads (LOGS) once it holds more than LAKEHOUSE_LOG_MAX_FILES data files:
    they grow by a small file per commit, and a read of one opens every file. Same rows, one commit; a compaction
    that fails changes nothing and is tried again by the next run."""
    limit = int(env_number("LAKEHOUSE_LOG_MAX_FILES", LOG_MAX_FILES, 1))
    for name in LOGS:
        path = engine.layout.meta(name)
        try:
            done = engine.compact_log(path, limit)
        except Exception as exc:  # the run's tables are all committed: a log left as it was is still whole
            log.warning("compacting %s: %s; left as it is", path, describe(exc))
            continue
        if done is not None:
            log.info("compacted %s: %d files into %d", path, done.files_removed, done.files_added)
