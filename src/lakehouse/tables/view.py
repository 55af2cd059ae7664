"""The lake read without a JVM: history, rows, run records and quality metrics through delta-rs and Arrow.

Inspection answers in about a second: Spark starts only for work that computes. Tables are opened with the
same `existing_table` as the rust engine (the same typed errors: TableNotFound, VersionNotFound) and read as Arrow,
filtered by the `_meta` tables' partition column before any row reaches Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from lakehouse.errors import TableNotFound, UsageError
from lakehouse.storage import filesystem, from_delta_uri
from lakehouse.tables.deltalog import existing_table, open_table
from lakehouse.tables.engine import HistoryEntry, history_entries
from lakehouse.tables.paths import arrow_uri, join


@dataclass(frozen=True)
class RunSummary:
    """One run of the daily job (one run date), from `_meta/runs`."""

    run_id: str
    run_date: dt.date
    status: str  # success | partial (some dataset or gold table failed) | failed (every one failed)
    engine: str
    started_at: dt.datetime
    finished_at: dt.datetime
    rows_read: int
    rows_quarantined: int
    rows_to_silver: int
    failed: list[str] = field(default_factory=list)  # names of the datasets and gold tables that failed

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    tables: list[dict[str, Any]]  # the run's `_meta/runs` rows (one per dataset and gold table)
    rejected: list[dict[str, Any]]  # its `_meta/rejected_files` rows
    quality: list[dict[str, Any]]  # its `_meta/quality` rows


_OPERATORS = ("!=", "=", "~")


@dataclass(frozen=True)
class Condition:
    """A row condition in the command line's words: `column=value` and `column!=value` compare with the value
    read as the column's type (a date, a number, text); `column~text` keeps the rows whose value, as text,
    contains `text` (a list of check results too: `errors~range`)."""

    column: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str, schema: pa.Schema) -> Condition:
        found = [(text.find(op), op) for op in _OPERATORS if op in text]
        at, op = min(found) if found else (-1, "")
        name = text[:at] if at > 0 else ""
        if name not in schema.names:
            raise UsageError(f"--where {text!r}: expected COLUMN=VALUE, COLUMN!=VALUE or COLUMN~TEXT with a column "
                             f"of the table ({', '.join(schema.names)})")
        return cls(name, op, text[at + len(op):])

    def expression(self, schema: pa.Schema) -> pc.Expression | None:
        """The condition as an Arrow filter (read with the files), or None when it is matched on text."""
        kind = schema.field(self.column).type
        if self.op == "~":
            return pc.match_substring(pc.field(self.column), self.value) if pa.types.is_string(kind) else None
        try:
            typed = pa.scalar(self.value).cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UsageError(f"--where {self.column}{self.op}{self.value}: {self.value!r} is not a {kind} "
                             f"value") from exc
        return pc.field(self.column) == typed if self.op == "=" else pc.field(self.column) != typed

    def holds(self, row: dict[str, Any]) -> bool:
        return self.value in str(row[self.column])


class LakeView:
    """Read-only access to the lake at `root`, no Spark session."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, table: str) -> str:
        return join(self.root, table)

    def _open(self, table: str, version: int | None = None) -> Any:
        return existing_table(self.path(table), version)

    def version(self, table: str) -> int | None:
        """The table's current version from its log; None when there is no table."""
        found = open_table(self.path(table))
        return None if found is None else found.version()

    def history(self, table: str, limit: int | None = None) -> list[HistoryEntry]:
        return history_entries(self._open(table), limit)

    def read(self, table: str, version: int | None = None, limit: int | None = None,
             where: pa.compute.Expression | None = None, conditions: tuple[str, ...] = (),
             columns: tuple[str, ...] = ()) -> pa.Table:
        """The table's rows (at `version`), at most `limit`, filtered by `where` and by `conditions` in the
        command line's words (see `Condition`), with `columns` only (all when empty)."""
        dataset = self._dataset(self._open(table, version))
        schema = dataset.schema
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise UsageError(f"no column {', '.join(unknown)} in {table} (its columns: {', '.join(schema.names)})")
        textual = []
        for c in (Condition.parse(text, schema) for text in conditions):
            expression = c.expression(schema)
            if expression is None:
                textual.append(c)
            else:
                where = expression if where is None else where & expression
        if limit is not None and where is None and not textual:
            return dataset.head(limit, columns=list(columns) or None)
        rows = dataset.to_table(filter=where)
        if textual:
            keep = [all(c.holds(row) for c in textual) for row in rows.select([c.column for c in textual]).to_pylist()]
            rows = rows.filter(pa.array(keep, pa.bool_()))
        if columns:
            rows = rows.select(list(columns))
        return rows if limit is None else rows.slice(0, limit)

    @staticmethod
    def _dataset(table: Any) -> pads.Dataset:
        """The table's active files as a pyarrow dataset, partition columns typed from the table's schema. Read
        by pyarrow alone: a dataset scanned through delta-rs's own filesystem can abort the interpreter at exit."""
        schema = pa.schema(table.schema().to_arrow())
        partition_columns = table.metadata().partition_columns
        files = [arrow_uri(from_delta_uri(f, table.table_uri)) for f in table.file_uris()]
        root = arrow_uri(from_delta_uri(table.table_uri.rstrip("/")))
        fs, base = filesystem(root)
        paths = [filesystem(f)[1] for f in files]
        partitioning = pads.partitioning(pa.schema([schema.field(c) for c in partition_columns]), flavor="hive") \
            if partition_columns else None
        return pads.dataset(paths, schema=schema, format="parquet", filesystem=fs, partitioning=partitioning,
                            partition_base_dir=base)

    def _meta_table(self, name: str, where: pa.compute.Expression | None = None) -> pa.Table | None:
        try:
            return self.read(f"_meta/{name}", where=where)
        except TableNotFound:
            return None

    def _meta(self, name: str, where: pa.compute.Expression | None = None) -> list[dict[str, Any]]:
        rows = self._meta_table(name, where)
        return [] if rows is None else list(rows.to_pylist())

    def meta_rows(self, name: str, where: pa.compute.Expression | None = None) -> list[dict[str, Any]]:
        """Every row of the `_meta` table `name` (none when it does not exist yet), or those `where` holds (a
        filter on its partition column reads only those partitions)."""
        return self._meta(name, where)

    def latest_meta_rows(self, name: str, keys: tuple[str, ...], order: str,
                         where: pa.compute.Expression | None = None) -> list[dict[str, Any]]:
        """The rows of the `_meta` table `name` (those `where` holds) that are the latest by `order` among the rows
        of the same `keys`: only they become Python objects, however long the log has grown."""
        rows = self._meta_table(name, where)
        if rows is None or rows.num_rows == 0:
            return []
        rows = rows.append_column("_row", pa.array(range(rows.num_rows), pa.int64()))
        # ties on `order` go to the row read last, as a sort by `order` that keeps the last of equals would
        newest = rows.sort_by([(order, "ascending"), ("_row", "ascending")]).group_by(
            list(keys), use_threads=False).aggregate([("_row", "last")])
        return list(rows.filter(pc.is_in(rows["_row"], value_set=newest["_row_last"])).drop_columns(["_row"])
                    .to_pylist())

    # ------------------------------------------------------------------ runs

    @staticmethod
    def _summaries(rows: list[dict[str, Any]]) -> list[RunSummary]:
        by_run: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_run.setdefault(r["run_id"], []).append(r)
        out = []
        for run_id, tables in by_run.items():
            failed = sorted(f"{t['layer']}.{t['name']}" for t in tables if t["status"] == "failed")
            status = "failed" if failed and len(failed) == len(tables) else "partial" if failed else "success"
            silver = [t for t in tables if t["layer"] == "silver"]
            out.append(RunSummary(
                run_id, tables[0]["run_date"], status, tables[0]["engine"],
                min(t["started_at"] for t in tables), max(t["finished_at"] for t in tables),
                sum(t["rows_read"] or 0 for t in silver), sum(t["rows_quarantined"] or 0 for t in silver),
                sum(t["rows_to_silver"] or 0 for t in silver), failed))
        return sorted(out, key=lambda s: (s.started_at, s.run_id))

    def runs(self, last: int | None = None) -> list[RunSummary]:
        """The latest `last` runs (every run when None), oldest first."""
        runs = self._summaries(self._meta("runs"))
        return runs[-last:] if last else runs

    def run(self, run_id: str) -> RunDetail | None:
        """One run in full, None when no run has that id."""
        where = pc.field("run_id") == run_id
        tables = self._meta("runs", where)
        if not tables:
            return None
        # the run date narrows the other tables to one partition
        day = pc.field("run_date") == pa.scalar(tables[0]["run_date"], pa.date32())
        quality = self._meta("quality", day & where)
        return RunDetail(self._summaries(tables)[0], sorted(tables, key=lambda t: (t["layer"] != "silver", t["name"])),
                         sorted(self._meta("rejected_files", day & where), key=lambda r: (r["dataset"], r["path"])),
                         sorted(quality, key=lambda r: (r["dataset"], r["check"], r["column"] or "")))

    def quality(self, run_date: dt.date | None = None) -> tuple[str | None, dt.date | None, list[dict[str, Any]]]:
        """(run id, run date, metric rows) of the latest run of `run_date` (default: the latest run date)."""
        rows = self._meta("quality") if run_date is None else self._meta(
            "quality", pc.field("run_date") == pa.scalar(run_date, pa.date32()))
        if not rows:
            return None, run_date, []
        day = run_date or max(r["run_date"] for r in rows)
        latest = max(r["run_id"] for r in rows if r["run_date"] == day)
        chosen = [r for r in rows if r["run_date"] == day and r["run_id"] == latest]
        return latest, day, sorted(chosen, key=lambda r: (r["dataset"], r["check"], r["column"] or ""))
