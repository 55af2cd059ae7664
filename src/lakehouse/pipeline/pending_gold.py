"""Gold dates owed: written down before silver changes, settled once the gold table is recomputed.

A run that changes silver and dies before its gold stage (a crash, a kill, a lost node) would leave those gold
dates stale, and the next run of the same date finds silver already as it should be: nothing to recompute. So a
dataset load records, before its first silver commit, the dates of every gold table built from that dataset
(`_meta/gold_pending`, status `pending`); the gold stage of every run recomputes the dates still owed and records
them `done`. A run that writes nothing to silver records nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pyspark.sql import types as T

from lakehouse.tables.engine import TableEngine
from lakehouse.tables.view import LakeView

SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()),  # the run that changed silver
    T.StructField("aggregation", T.StringType()),
    T.StructField("dates", T.ArrayType(T.StringType())),  # ISO dates of the gold table's date column
    T.StructField("status", T.StringType()),  # pending | done
    T.StructField("settled_by", T.StringType()),  # the run whose gold stage recomputed them
    T.StructField("recorded_at", T.TimestampType()),
])


def _path(engine: TableEngine) -> str:
    return engine.layout.meta("gold_pending")


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def record(engine: TableEngine, run_id: str, dates: Mapping[str, Iterable[Any]]) -> None:
    """Owe `dates` (aggregation -> date values) to gold, on behalf of `run_id`."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [{"run_id": run_id, "aggregation": name, "dates": sorted({_iso(d) for d in values if d is not None}),
             "status": "pending", "settled_by": None, "recorded_at": now} for name, values in dates.items()]
    if rows:
        engine.append_rows(rows, SCHEMA, _path(engine))


def owed(engine: TableEngine) -> dict[str, tuple[set[str], set[str]]]:
    """aggregation -> (ISO dates still owed, the run ids that owe them); the log read without Spark."""
    return owed_from(LakeView(engine.layout.root).meta_rows("gold_pending"))


def owed_from(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[set[str], set[str]]]:
    """`owed` from the rows of `_meta/gold_pending`: the dates of every `pending` row whose run has no `done` row
    for the same gold table."""
    rows = list(rows)
    done = {(r["run_id"], r["aggregation"]) for r in rows if r["status"] == "done"}
    out: dict[str, tuple[set[str], set[str]]] = {}
    for r in rows:
        if r["status"] != "pending" or (r["run_id"], r["aggregation"]) in done:
            continue
        dates, runs = out.setdefault(r["aggregation"], (set(), set()))
        dates.update(r["dates"] or [])
        runs.add(r["run_id"])
    return out


def settle(engine: TableEngine, aggregation: str, run_ids: Iterable[str], settled_by: str) -> None:
    """Record the dates owed by `run_ids` to `aggregation` as recomputed."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [{"run_id": r, "aggregation": aggregation, "dates": None, "status": "done", "settled_by": settled_by,
             "recorded_at": now} for r in sorted(set(run_ids))]
    if rows:
        engine.append_rows(rows, SCHEMA, _path(engine))
