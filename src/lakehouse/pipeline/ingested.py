"""The ingested-file log (`_meta/ingested_files`): which raw file was loaded, with which size, modification time,
store fingerprint (ETag, or inode and change time) and content digest. `--pending` compares the raw zone with it: new or changed files make their partition pending, and files
that disappeared upstream are reported (their rows stay in the tables; deleting data is a human decision)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import types as T

from lakehouse.sources.files import RawFile, content_checksum, is_local, list_raw
from lakehouse.sources.probe import Rejection
from lakehouse.specs import Catalog
from lakehouse.specs.models import DatasetSpec
from lakehouse.tables.engine import TableEngine
from lakehouse.tables.paths import LakeLayout
from lakehouse.tables.view import LakeView

SCHEMA = T.StructType([
    T.StructField("dataset", T.StringType()),
    T.StructField("partition_date", T.DateType()),
    T.StructField("path", T.StringType()),
    T.StructField("size", T.LongType()),
    T.StructField("modified_at", T.TimestampType()),
    T.StructField("status", T.StringType()),  # ingested | rejected | deleted
    T.StructField("reason", T.StringType()),  # why a rejected file could not be read
    T.StructField("columns", T.ArrayType(T.StringType())),  # the raw columns the file was read with
    T.StructField("run_id", T.StringType()),
    T.StructField("recorded_at", T.TimestampType()),
    # the object's ETag on object storage; on a local disk its inode and change time (sources.files.local_fingerprint)
    T.StructField("etag", T.StringType()),
    # what the load depended on besides the files (pipeline.reuse): the same files and state need no new load
    T.StructField("load_state", T.StringType()),
    # a local file's content digest, taken before it was read (sources.files.content_checksum)
    T.StructField("checksum", T.StringType()),
])


@dataclass
class PendingWork:
    dates: dict[str, list[dt.date]] = field(default_factory=dict)  # dataset -> partition dates to load
    changed: dict[str, list[str]] = field(default_factory=dict)  # dataset -> new or changed files
    deleted: list[dict[str, Any]] = field(default_factory=list)  # latest log rows of files gone upstream
    # dataset -> partition folders whose parts are not a date (date=2025-02-30, month=13) -> why; not read
    invalid: dict[str, dict[str, str]] = field(default_factory=dict)

    def datasets_for(self, day: dt.date) -> list[str]:
        return sorted(name for name, days in self.dates.items() if day in days)

    def all_dates(self) -> list[dt.date]:
        return sorted({d for days in self.dates.values() for d in days})


def _fingerprint(size: int, modified: dt.datetime | None) -> tuple[Any, ...]:
    stamp = modified.astimezone(dt.UTC).replace(tzinfo=None) if modified and modified.tzinfo else modified
    return int(size), stamp.replace(microsecond=0) if stamp else None


def unchanged(seen: dict[str, Any], f: RawFile, by_content: bool = False) -> bool:
    """Whether the file is as the log row `seen` recorded it.

    On object storage: the same size and ETag (the store's name for the content; a re-upload of the same bytes is
    no change). On a local disk: the same size, and the same inode and change time (cheap: no byte read; any write
    moves the change time, also one that keeps the size and the modification time), or else the same content
    digest (a copied raw zone, a touched file: read once to find it is the same). Log rows written before
    fingerprints were kept compare size and modification time (to the second). With `by_content` (a forced
    reload) only the content counts: the ETag, or the digest of the bytes read now."""
    if int(seen["size"]) != int(f.size):
        return False
    if f.etag and not is_local(f.path):
        return seen.get("etag") == f.etag
    if not by_content:
        if seen.get("etag") and f.etag:
            if seen["etag"] == f.etag:
                return True
        elif _fingerprint(seen["size"], seen["modified_at"]) == _fingerprint(f.size, f.mtime):
            return True
    recorded = seen.get("checksum")
    return bool(recorded) and content_checksum(f) == recorded


def latest_state(engine: TableEngine, dataset: str | None, partition_dates: list[dt.date] | None = None
                 ) -> dict[tuple[str, str], dict[str, Any]]:
    """`latest_in` the lake the engine writes."""
    return latest_in(LakeView(engine.layout.root), dataset, partition_dates)


def latest_in(view: LakeView, dataset: str | None = None, partition_dates: list[dt.date] | None = None
              ) -> dict[tuple[str, str], dict[str, Any]]:
    """(dataset, path) -> the latest log row of each file of `dataset` (of the raw partitions `partition_dates`
    when given; every dataset for None). Read from the Delta log without Spark (the log is lake metadata, and a
    Spark read of it costs a run seconds of jobs); only the latest row of each file becomes a Python object."""
    where = None
    if dataset is not None:
        where = pc.field("dataset") == dataset
    if partition_dates is not None:
        dates = pc.field("partition_date").isin(pa.array(partition_dates, pa.date32()))
        where = dates if where is None else where & dates
    rows = view.latest_meta_rows("ingested_files", ("dataset", "path"), "recorded_at", where)
    return {(r["dataset"], r["path"]): {k: _naive_utc(v) for k, v in r.items()} for r in rows}


def _naive_utc(value: Any) -> Any:
    """Timestamps as the pipeline holds them: naive, in UTC (Arrow reads a Delta timestamp as UTC-aware)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def find_pending(engine: TableEngine, catalog: Catalog, since: dt.date | None = None) -> PendingWork:
    return pending_work(catalog, engine.layout, latest_state(engine, None), since)  # one read of the log


def look_back(days: int | None, today: dt.date | None = None) -> dt.date | None:
    """The oldest raw partition date a look-back of `days` days reaches (None: no bound)."""
    if days is None:
        return None
    return (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=days)


def _raw_days(spec: DatasetSpec, layout: LakeLayout, since: dt.date | None, invalid: dict[str, str]
              ) -> dict[dt.date, list[RawFile]]:
    """The dataset's raw files by date; with `since`, only dates from `since` to today (UTC), listed day by day
    so a long raw history is not listed every night. Partition folders whose parts are not a date go to
    `invalid` (only seen in a whole listing)."""
    if since is None:
        listing = list_raw(spec, layout)
        invalid.update(listing.invalid)
        return listing.days
    today = dt.datetime.now(dt.UTC).date()
    days = {}
    for n in range((today - since).days + 1):
        day = since + dt.timedelta(days=n)
        files = list_raw(spec, layout, day).days.get(day)
        if files:
            days[day] = files
    return days


def pending_work(catalog: Catalog, layout: LakeLayout, state: dict[tuple[str, str], dict[str, Any]],
                 since: dt.date | None = None) -> PendingWork:
    """The raw partitions with a file that `state` (the log's latest row per file) has not seen as it is now, and
    the files the log has as ingested that are gone upstream; with `since`, partitions dated `since` or later."""
    work = PendingWork()
    for spec in catalog.dataset_order():
        invalid: dict[str, str] = {}
        partitions = _raw_days(spec, layout, since, invalid)
        if invalid:
            work.invalid[spec.name] = dict(sorted(invalid.items()))
        present = set()
        for day, files in partitions.items():
            for f in files:
                present.add(f.path)
                seen = state.get((spec.name, f.path))
                if seen is None or seen["status"] not in ("ingested", "rejected") or not unchanged(seen, f):
                    work.changed.setdefault(spec.name, []).append(f.path)
                    if day not in work.dates.setdefault(spec.name, []):
                        work.dates[spec.name].append(day)
        work.deleted += [row for (name, path), row in sorted(state.items())
                         if name == spec.name and row["status"] == "ingested" and path not in present
                         and (since is None or row["partition_date"] >= since)]
    return work


@dataclass
class Unchanged:
    """A day whose files are all exactly as last ingested (or rejected): bronze holds their rows already."""

    columns: list[str]
    read: list[RawFile]
    rejected: list[Rejection]


def unchanged_since_ingest(state: dict[tuple[str, str], dict[str, Any]], dataset: str, files: list[RawFile],
                           by_content: bool = False) -> Unchanged | None:
    """The raw columns the files were ingested with, when every file is exactly as last ingested or rejected (by
    the log `state` from latest_state); else None. With `by_content` (a forced reload) a file counts as the same
    only by its content, and a file rejected before is read again."""
    if not state or not files:
        return None
    out = Unchanged([], [], [])
    for f in files:
        seen = state.get((dataset, f.path))
        if seen is None or not unchanged(seen, f, by_content):
            return None
        if seen["status"] == "rejected" and not by_content:
            out.rejected.append(Rejection(f, seen.get("reason") or "rejected before"))
            continue
        if seen["status"] != "ingested" or seen["columns"] is None:
            return None
        out.read.append(replace(f, checksum=f.checksum or seen.get("checksum")))
        out.columns += [c for c in seen["columns"] if c not in out.columns]
    return out if out.read else None


@dataclass(frozen=True)
class Loaded:
    """What one run date's load of a dataset read and rejected, for the log."""

    day: dt.date
    run_id: str
    files: list[RawFile]
    columns: list[str] | None
    rejected: Sequence[Rejection] = ()
    load_state: str | None = None


def record(engine: TableEngine, dataset: str, loads: Sequence[Loaded]) -> None:
    """Log the files read (status ingested, with the raw columns) and the files rejected (with the reason), for
    every run date of a batch in one commit."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [{"dataset": dataset, "partition_date": load.day, "path": f.path, "size": int(f.size),
             "modified_at": _fingerprint(f.size, f.mtime)[1], "status": status, "reason": reason,
             "columns": load.columns if status == "ingested" else None, "run_id": load.run_id, "recorded_at": now,
             "etag": f.etag, "load_state": load.load_state, "checksum": f.checksum}
            for load in loads
            for f, status, reason in [(f, "ingested", None) for f in load.files]
            + [(r.file, "rejected", r.reason) for r in load.rejected]]
    if rows:
        engine.append_rows(rows, SCHEMA, engine.layout.meta("ingested_files"))


def record_deleted(engine: TableEngine, rows: list[dict[str, Any]], run_id: str) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    out = [{**{k: r[k] for k in ("dataset", "partition_date", "path", "size", "modified_at")},
            "status": "deleted", "reason": None, "columns": r.get("columns"), "run_id": run_id,
            "recorded_at": now, "etag": r.get("etag"), "load_state": None, "checksum": r.get("checksum")}
           for r in rows]
    if out:
        engine.append_rows(out, SCHEMA, engine.layout.meta("ingested_files"))
