"""Gold follows its inputs: the silver versions each gold table was last built from, and the dates a change since
then asks to recompute.

A run's load of a gold table's fact table reaches gold through the dates the load touches, and through
`_meta/gold_pending` when the run dies between silver and gold. Anything else leaves no such trace: a change to a
joined table (a dimension's new or changed row, loaded by a run on a day without facts), and any change made
outside a run (a `restore`, a `DELETE` or `UPDATE` by hand with delta-rs or Spark SQL, another tool). So after
each gold build the versions of its inputs are recorded (`_meta/gold_inputs`); the next run finds the commits made
since that changed data (every one for a joined table, those not tagged with a run id for the fact table),
compares the rows of the recorded version with the current ones (by business columns and row hash) and recomputes
the gold dates they touch: for the fact table, the dates of the rows that changed; for a joined table, the dates
of the facts that reference a changed key. When the recorded version can no longer be read (vacuumed), every date
is recomputed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.specs import Catalog
from lakehouse.specs.aggregation import AggregationSpec, Join
from lakehouse.specs.dataset import VALIDITY
from lakehouse.tables.engine import HistoryEntry, TableEngine
from lakehouse.tables.view import LakeView

SCHEMA = T.StructType([
    T.StructField("aggregation", T.StringType()),
    T.StructField("dataset", T.StringType()),  # a silver table the gold table reads
    T.StructField("version", T.LongType()),  # its version when the gold table was last built
    T.StructField("run_id", T.StringType()),
    T.StructField("recorded_at", T.TimestampType()),
])
RUN_TAG = re.compile(r"^\d{8}-\d{8}T\d{6}-[0-9a-f]{8}$")  # the pipeline's run ids (pipeline/job.py new_run_id)
NO_DATA_CHANGE = {"OPTIMIZE", "VACUUM START", "VACUUM END"}


@dataclass(frozen=True)
class InputChange:
    """One silver table a gold table reads, changed outside the pipeline's runs since the gold table was built:
    the commits that did it, and the gold dates they touch (None: every date; an empty set: none known yet)."""

    aggregation: str
    dataset: str
    commits: list[str]  # 'version N: OPERATION'
    dates: set[dt.date] | None = field(default_factory=set)
    vacuumed: int | None = None  # the recorded version, when it can no longer be read
    joined: bool = False  # a joined table: every commit that changed data counts, a run's too

    @property
    def why(self) -> str:
        gone = f"; version {self.vacuumed} can no longer be read" if self.vacuumed is not None else ""
        how = "joined table, changed since gold was built" if self.joined else "changed outside a run"
        return f"silver/{self.dataset} {how} ({', '.join(self.commits)}{gone})"

    @property
    def reason(self) -> str:
        return f"{self.why}: {'every date' if self.dates is None else f'{len(self.dates)} date(s)'}"


@dataclass
class Drift:
    """What changed in a gold table's inputs outside the pipeline's runs, one change per input."""

    changes: list[InputChange] = field(default_factory=list)

    @property
    def dates(self) -> set[dt.date] | None:
        """The dates to recompute (None: every date)."""
        if any(c.dates is None for c in self.changes):
            return None
        return {d for c in self.changes for d in c.dates or ()}

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.changes]


def inputs(spec: AggregationSpec) -> list[str]:
    return [spec.source_dataset, *[j.dataset for j in spec.joins if j.dataset != spec.source_dataset]]


def recorded(engine: TableEngine) -> dict[tuple[str, str], int]:
    """(aggregation, dataset) -> the version of the dataset's silver table its gold table was last built from."""
    return recorded_from(LakeView(engine.layout.root).meta_rows("gold_inputs"))


def current(engine: TableEngine, spec: AggregationSpec) -> dict[str, int]:
    """dataset -> the current version of its silver table (tables that do not exist are left out)."""
    versions = {name: engine.version(engine.layout.silver(name)) for name in inputs(spec)}
    return {name: v for name, v in versions.items() if v is not None}


def record(engine: TableEngine, run_id: str, spec: AggregationSpec, versions: dict[str, int],
           before: dict[tuple[str, str], int]) -> None:
    """The input versions `spec`'s gold table was just built from, when they differ from those recorded."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [{"aggregation": spec.name, "dataset": name, "version": version, "run_id": run_id, "recorded_at": now}
            for name, version in sorted(versions.items()) if before.get((spec.name, name)) != version]
    if rows:
        engine.append_rows(rows, SCHEMA, engine.layout.meta("gold_inputs"))


def stale(engine: TableEngine, catalog: Catalog, before: dict[tuple[str, str], int]) -> list[InputChange]:
    """The inputs of each gold table changed outside a run since it was built (the tables' logs only, no data
    read; the dates are not known yet)."""
    lake = engine.layout
    return stale_inputs(catalog, before, lambda name: engine.version(lake.silver(name)),
                        lambda name, n: engine.history(lake.silver(name), n))


def stale_inputs(catalog: Catalog, before: dict[tuple[str, str], int], version_of: Callable[[str], int | None],
                 history_of: Callable[[str, int], list[HistoryEntry]]) -> list[InputChange]:
    """`stale` over any reader of the silver tables' logs: the engine, or the lake view (`plan`, no JVM)."""
    out = []
    for spec in catalog.aggregations.values():
        for name in inputs(spec):
            since, now = before.get((spec.name, name)), version_of(name)
            if since is not None and now is not None and since != now:
                joined = name != spec.source_dataset
                commits = _changes(history_of(name, now - since), since, now, joined)
                if commits:
                    out.append(InputChange(spec.name, name, commits, joined=joined))
    return out


def recorded_from(rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """`recorded` from the rows of `_meta/gold_inputs` read without Spark."""
    return {(r["aggregation"], r["dataset"]): int(r["version"])
            for r in sorted(rows, key=lambda r: r["recorded_at"])}


def _changes(entries: list[HistoryEntry], since: int, now: int, runs_too: bool) -> list[str]:
    """The commits after version `since` up to `now` that changed data, as 'version N: OPERATION': all of them for
    a joined table (a run's dimension load reaches gold only this way), else only those not a pipeline run's (a
    run's fact load owes its dates through `_meta/gold_pending`)."""
    return [f"version {h.version}: {h.operation}" for h in sorted(entries, key=lambda h: h.version)
            if since < h.version <= now and (runs_too or not (h.tag and RUN_TAG.match(h.tag)))
            and h.operation.upper() not in NO_DATA_CHANGE]


def drift(engine: TableEngine, catalog: Catalog, spec: AggregationSpec, before: dict[tuple[str, str], int]
          ) -> Drift:
    """The gold dates of `spec` that changes to its inputs since it was built ask to recompute, besides those a
    run's fact load owes: for the fact table, the dates of rows changed outside a run; for a joined table, the
    dates of the facts that reference a key whose row changed in any way (a dimension's late or changed row)."""
    out = Drift()
    lake = engine.layout
    for name, now in current(engine, spec).items():
        since = before.get((spec.name, name))
        if since is None or since == now:
            continue
        path = lake.silver(name)
        joined = name != spec.source_dataset
        commits = _changes(engine.history(path, now - since), since, now, joined)
        if not commits:
            continue
        join = next((j for j in spec.joins if j.dataset == name), None) if joined else None
        changed = _changed_rows(engine, path, since, None if join is None else (join.on, _used_of(spec, join)))
        if changed is None:
            out.changes.append(InputChange(spec.name, name, commits, None, since, joined))
            continue
        if not joined:
            dates = {r[0] for r in changed.select(spec.date_column).distinct().collect() if r[0] is not None}
        else:
            on = join.on if join is not None else []
            fact = engine.read_or_none(lake.silver(spec.source_dataset))
            dates = set() if fact is None else {
                r[0] for r in fact.join(changed.select(*on).distinct(), on, "left_semi")
                .select(spec.date_column).distinct().collect() if r[0] is not None}
        out.changes.append(InputChange(spec.name, name, commits, dates, joined=joined))
    return out


def used_columns(spec: AggregationSpec) -> Callable[[str], bool]:
    """Whether a column name appears in any of the spec's expressions (group_by, measures, derived, filter): a
    joined table's other columns cannot change the gold table (a textual test, so it errs towards 'used')."""
    text = "\n".join([*spec.group_by, *spec.measures.values(), *spec.derived.values(), spec.filter or ""])
    return lambda name: re.search(rf"(?<![\w$]){re.escape(name)}(?![\w$])", text, re.IGNORECASE) is not None


def _used_of(spec: AggregationSpec, join: Join) -> Callable[[str], bool]:
    """Whether a column of the joined table can change the gold table: the join brings it (its `select:`) and an
    expression of the spec uses it (by the name it has after the join's `prefix:`)."""
    used = used_columns(spec)

    def of(name: str) -> bool:
        if join.as_of is not None and name in VALIDITY:
            return True  # joined as of the facts' time: a version's interval decides which facts it meets
        as_joined = join.brought([name]).get(name)
        return as_joined is not None and used(as_joined)

    return of


def _changed_rows(engine: TableEngine, path: str, since: int,
                  joined: tuple[list[str], Callable[[str], bool]] | None = None) -> DataFrame | None:
    """Rows that differ between version `since` of a silver table and its current version (either side): by the
    columns the row hash covers, or for a joined table (`joined`: its join keys and which columns the gold spec
    uses) by the keys and the used columns only. None when version `since` cannot be read."""
    try:
        old = engine.read(path, version=since)
        old.limit(1).collect()  # a vacuumed version fails here, not later inside a join
    except Exception:  # a version gone (vacuumed) is answered by recomputing every date
        return None
    new = engine.read(path)
    if joined is None:
        columns = [c for c in old.columns if c in new.columns and (not c.startswith("_") or c == "_row_hash")]
    else:
        on, used = joined
        columns = [c for c in old.columns if c in new.columns and (c in on or (not c.startswith("_") and used(c)))]
    keep: list[Any] = [F.col(c) for c in columns]
    old, new = old.select(*keep), new.select(*keep)
    return old.exceptAll(new).unionByName(new.exceptAll(old))
