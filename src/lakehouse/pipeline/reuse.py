"""Knowing that a load would change nothing, without doing it: a rerun of a day whose raw files, rules and tables
are as its last load left them.

After each load the ingested-file log records, with every file, the load's *state*: a digest of the dataset's spec
(as parsed), the product's version, and the Delta versions of the dataset's bronze, quarantine and silver tables
and of the silver tables its checks look up. When a later run finds the same files (size and mtime, or ETag) and
the same state, the load it would do is the one already done: checks, quarantine and the MERGE are skipped and the
day's counts are those recorded by that load. Anything else (another commit to one of those tables, a changed
rule, a new product version, a `not_older_than` check, a `not_in_future` check that failed rows) means a full
load.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pyarrow.compute as pc

from lakehouse import __version__
from lakehouse.results import DatasetOutcome, QualityMetric
from lakehouse.specs import models as m
from lakehouse.specs import vocabulary
from lakehouse.tables.engine import MergeResult, TableEngine
from lakehouse.tables.view import LakeView


def load_state(engine: TableEngine, spec: m.DatasetSpec) -> str | None:
    """The state a load of `spec` depends on besides its raw files (None: it depends on the time of the run, through
    a `not_older_than` check: a row that passed yesterday may be too old today)."""
    if any(vocabulary.kind_of(c).time == "tightens" for c in spec.checks):
        return None
    lake = engine.layout
    tables = {"bronze": lake.bronze(spec.name), "quarantine": lake.quarantine(spec.name),
              "silver": lake.silver(spec.name), **{f"ref:{r}": lake.silver(r) for r in sorted(spec.references())}}
    state = {"spec": spec.model_dump(mode="json", by_alias=True, exclude={"description", "tests"}),
             "product": __version__,
             "versions": {name: engine.version(path) for name, path in tables.items()}}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:24]


def last_load(state: dict[tuple[str, str], dict[str, Any]], dataset: str, paths: list[str], current: str | None
              ) -> str | None:
    """The run id of the load that logged every one of `paths` with the state `current`, if one did."""
    if current is None or not paths:
        return None
    rows = [state.get((dataset, p)) for p in paths]
    if any(r is None or r.get("load_state") != current for r in rows):
        return None
    run_ids = {r["run_id"] for r in rows if r is not None}
    return run_ids.pop() if len(run_ids) == 1 else None


def still_true(spec: m.DatasetSpec, out: DatasetOutcome) -> bool:
    """Whether the recorded verdicts hold at any later time. `not_in_future` is the one check judged against the time
    of the run that only loosens as time passes: a value not in the future then is not in the future now, but one
    that was may no longer be. So a load where it failed no row stands; one where it failed rows is redone."""
    names = {c.name or c.check for c in spec.checks if vocabulary.kind_of(c).time == "loosens"}
    return not any(q.check in names and q.failed_rows for q in out.quality)


def recorded_outcome(engine: TableEngine, dataset: str, day: dt.date, run_id: str) -> DatasetOutcome | None:
    """The outcome the run `run_id` recorded for `dataset` on `day` (counts and quality metrics), None when the run
    records hold no successful one. Read from the run records without Spark."""
    view = LakeView(engine.layout.root)
    this_run = (pc.field("run_date") == day) & (pc.field("run_id") == run_id)
    found = view.meta_rows("runs", this_run & (pc.field("layer") == "silver") & (pc.field("name") == dataset)
                           & (pc.field("status") == "ok"))
    if not found:
        return None
    row = found[0]
    out = DatasetOutcome(dataset, day, files=row["files"] or 0)
    for name in ("rows_read", "rows_malformed", "rows_quarantined", "rows_warned", "rows_duplicate",
                 "rows_held_back", "rows_to_silver"):
        setattr(out, name, int(row[name] or 0))
    out.new_columns = list(row["new_columns"] or [])
    out.merge = MergeResult(source_rows=out.rows_to_silver)  # every row already there, as it is
    for q in view.meta_rows("quality", this_run & (pc.field("dataset") == dataset)):
        out.quality.append(QualityMetric(q["check"], q["column"], q["criticality"], q["evaluated_rows"],
                                         q["failed_rows"], q["observed"], q["threshold"], q["status"]))
    out.unchanged_since = run_id
    out.message = f"unchanged since run {run_id}: files, rules and tables as that load left them"
    return out
