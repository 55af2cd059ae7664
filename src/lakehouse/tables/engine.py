"""The table-engine seam: every Delta read and write of the product goes through `TableEngine`.

Two implementations keep the same behaviour and write tables the other can read:
  - `JvmEngine` (delta-spark): distributed, production;
  - `RustEngine` (delta-rs): embedded default; Spark computes, delta-rs commits.
The MERGE semantics (condition, partition pruning predicate, update/insert/delete clauses) are built here once,
as SQL strings both engines accept, so the engines differ only in how they execute them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
import logging
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import faults, retry
from lakehouse.errors import LakehouseError
from lakehouse.frames import is_small, one_row
from lakehouse.sql import Dialect, column, in_list, qualified
from lakehouse.tables.merging import MergePlan as MergePlan
from lakehouse.tables.merging import MergeResult as MergeResult
from lakehouse.tables.merging import compare, within_reach
from lakehouse.tables.paths import LakeLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryEntry:
    """One commit of a table. `metrics` are the engine's own operation metrics (their names differ: Delta's
    `numOutputRows`, delta-rs's `num_added_rows`), as text."""

    version: int
    timestamp: dt.datetime  # UTC, naive
    operation: str
    parameters: dict[str, str]
    metrics: dict[str, str]
    tag: str | None = None  # the writer's commit tag (`userMetadata`): the run id for the pipeline's commits


@dataclass(frozen=True)
class OptimizeResult:
    """What a compaction did: data files added and removed, and the table version after it."""

    files_added: int
    files_removed: int
    version: int | None


@dataclass(frozen=True)
class VacuumResult:
    """The data files a vacuum deleted (or, in a dry run, would delete), as paths relative to the table root,
    sorted. Files an earlier vacuum already deleted are not listed again."""

    files: list[str]
    dry_run: bool

    @property
    def count(self) -> int:
        return len(self.files)


def history_entries(table: Any, limit: int | None = None) -> list[HistoryEntry]:
    """A delta-rs table's commits, newest first (at most `limit`), as the contract's HistoryEntry: the commit
    infos of its log, whichever engine wrote them."""
    from lakehouse.tables.deltalog import commit_infos

    entries = []
    for h in commit_infos(table, limit):
        stamp = dt.datetime.fromtimestamp(int(h["timestamp"]) / 1000, dt.UTC).replace(tzinfo=None)
        entries.append(HistoryEntry(
            version=int(h["version"]), timestamp=stamp, operation=str(h.get("operation")),
            tag=str(h["userMetadata"]) if h.get("userMetadata") else None,
            parameters={str(k): str(v) for k, v in (h.get("operationParameters") or {}).items()},
            metrics={str(k): str(v) for k, v in (h.get("operationMetrics") or {}).items()}))
    return entries


def relative_to_table(table_root: str, file: str) -> str:
    """A data file's path relative to its table root, whatever form the engine gave it in (absolute path,
    file: URI, s3:// or s3a:// URI, or relative already)."""
    def bare(text: str) -> str:
        text = unquote(text)
        for scheme in ("file://", "file:", "s3a://", "s3://"):
            if text.startswith(scheme):
                return text[len(scheme):]
        return text

    if "://" not in file and not file.startswith(("/", "file:")):
        return file
    root = bare(table_root if "://" in table_root else os.path.abspath(table_root)).rstrip("/") + "/"
    path = bare(file)
    return path[len(root):] if path.startswith(root) else path


# the operations of the contract: a failure of the network or object store that passes by itself is tried again in
# place (each operation is idempotent: a MERGE or a partition replace applied by a try whose answer was lost changes
# nothing the second time; an append carries a transaction id, or is a log where a repeated row is harmless); any
# other error inside one is translated into the product's own (errors.TableError)
CONTRACT = ("exists", "read", "version", "replace_partitions", "append", "append_rows", "merge", "upsert", "history",
            "optimize", "vacuum", "delete", "restore", "merge_replacing", "logged_values")


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(method)

    @functools.wraps(method)
    def call(self: TableEngine, *args: Any, **kwargs: Any) -> Any:
        attempt = 1
        while True:
            try:
                return method(self, *args, **kwargs)
            except LakehouseError:
                raise
            except Exception as exc:
                path = signature.bind(self, *args, **kwargs).arguments.get("path", "")
                cause = retry.transient_cause(exc)
                if cause is None or attempt >= retry.tries():
                    translated = self.translate(exc, str(path))
                    if translated is None:
                        raise
                    raise translated from exc
                wait = retry.delay(attempt)
                log.warning("%s of %s: %s (try %d of %d); trying again in %.1f s", method.__name__, path, cause,
                            attempt, retry.tries(), wait)
                time.sleep(wait)
                attempt += 1

    call.__translating__ = True  # type: ignore[attr-defined]
    return call


class TableEngine(ABC):
    """Delta I/O used by the pipeline. Paths are table roots (local or s3://)."""

    name: str = "abstract"
    dialect: Dialect = "spark"  # how the engine's MERGE conditions and predicates are written

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for op in CONTRACT:
            method = cls.__dict__.get(op)
            if method is not None and not getattr(method, "__translating__", False):
                setattr(cls, op, _translating(method))

    def translate(self, exc: Exception, path: str) -> LakehouseError | None:
        """The product's error for a library error raised by an operation on the table at `path` (None: not
        one the product knows; it propagates as it is)."""
        return None

    def __init__(self, spark: SparkSession, layout: LakeLayout) -> None:
        self.spark = spark
        self.layout = layout
        self.commit_tag: str | None = None
        self.instance = uuid.uuid4().hex[:12]  # this engine's own scratch folders are named by it

    def release(self) -> None:
        """Delete this engine's scratch files (local copies of remote files); called as a run ends."""
        return None

    def tag_commits(self, tag: str | None) -> None:
        """Record `tag` (the run id) with every later commit, as the commit's `userMetadata`; None stops."""
        self.commit_tag = tag

    def exists(self, path: str) -> bool:
        """Whether a Delta table is at `path`: from its log, read by delta-rs (no Spark job), on every engine."""
        from lakehouse.tables.deltalog import is_table

        return is_table(path)

    @abstractmethod
    def read(self, path: str, version: int | None = None, partitions: dict[str, list[Any]] | None = None
             ) -> DataFrame:
        """The table (current or `version`) as a Spark DataFrame, partition columns typed. With `partitions`
        (partition column -> values) only those partitions are read: a day's work reads a day's files."""

    def version(self, path: str) -> int | None:
        """Current version, or None when there is no table: from the log, read by delta-rs (no Spark job; a MERGE
        or a write asks it before and after, and the pipeline before each decision), on every engine."""
        from lakehouse.tables.deltalog import open_table

        table = open_table(path)
        return None if table is None else table.version()

    def compact_log(self, path: str, max_files: int) -> OptimizeResult | None:
        """Compact a table that grows by one small file per commit (the `_meta` logs) once it holds more than
        `max_files` data files, so that reading it opens a few files, not one per run ever made. The file count
        comes from the Delta log (delta-rs, no Spark job); the compaction is the engine's `optimize`."""
        from lakehouse.tables.deltalog import file_count

        return self.optimize(path) if file_count(path) > max_files else None

    def size(self, path: str, partitions: dict[str, list[Any]] | None = None) -> int:
        """Bytes of the data files a read of the table (of `partitions`) scans; 0 when there is no table. From the
        Delta log, read by delta-rs without a Spark job, on every engine: the tables keep the protocol both engines
        read."""
        from lakehouse.tables.deltalog import table_size

        return table_size(path, partitions)

    def logged_values(self, path: str, column: str) -> set[Any] | None:
        """The distinct values of `column` when the table's Delta log tells them (tables.deltalog.logged_values),
        else None; read by delta-rs without a Spark job, on every engine."""
        from lakehouse.tables.deltalog import logged_values

        return logged_values(path, column)

    @abstractmethod
    def replace_partitions(self, df: DataFrame, path: str, partition_by: list[str],
                           partitions: dict[str, list[Any]]) -> int:
        """Atomically replace the rows of `partitions` (partition column -> values) with `df`; create the table
        if missing. New nullable columns are added to the table. Returns the new version."""

    @abstractmethod
    def append(self, df: DataFrame, path: str, partition_by: list[str] | None = None,
               txn: tuple[str, int] | None = None) -> int:
        """Append rows (create the table if missing). Returns the new version. With `txn` = (app id, version),
        the commit records that application transaction, and an append whose version the table has already
        seen for that app id is skipped: a retried write cannot apply twice."""

    def append_rows(self, rows: Sequence[dict[str, Any]], schema: T.StructType, path: str,
                    partition_by: list[str] | None = None, txn: tuple[str, int] | None = None) -> int:
        """`append` for records the pipeline holds in memory (run records, logs): an engine may write them
        without a Spark job."""
        if not rows:
            raise ValueError("append_rows needs at least one row")
        return self.append(self.spark.createDataFrame(list(rows), schema), path, partition_by, txn=txn)

    @abstractmethod
    def merge(self, df: DataFrame, path: str, plan: MergePlan, base_version: int | None = None) -> MergeResult:
        """MERGE `df` into the table by `plan` (create the table from `df` if missing). `base_version` is the
        version the caller read to prepare `df`: a conflicting commit by another writer since then fails this
        one (the jvm engine gets the same from the MERGE's own read of the table)."""

    def upsert(self, changed: DataFrame | None, inserts: DataFrame | None, path: str, plan: MergePlan,
               base_version: int | None) -> MergeResult:
        """Apply what `merge_replacing` sorted out at `base_version`: `changed` rows match a target row (they
        update it when the plan's condition holds), `inserts` match none. By default one MERGE of both."""
        parts = [d for d in (changed, inserts) if d is not None]
        if not parts:
            return MergeResult(version=self.version(path))
        source = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
        return self.merge(source, path, plan, base_version)

    def history(self, path: str, limit: int | None = None) -> list[HistoryEntry]:
        """The table's commits, newest first (at most `limit`), from the commit infos of its log, read by
        delta-rs (no Spark job), on every engine. TableNotFound when there is no table."""
        from lakehouse.tables.deltalog import existing_table

        return history_entries(existing_table(path), limit)

    @abstractmethod
    def optimize(self, path: str) -> OptimizeResult:
        """Compact small files into larger ones (bin-packing, one commit when there is anything to compact)."""

    @abstractmethod
    def vacuum(self, path: str, retention_hours: int, dry_run: bool = False) -> VacuumResult:
        """Delete the data files no table version of the last `retention_hours` needs. The caller enforces the
        retention floor; the engine's own check is lifted for this call only and the session's settings are
        left as they were."""

    @abstractmethod
    def delete(self, path: str, where: str) -> int:
        """Delete the rows matching the SQL condition; returns how many were deleted."""

    @abstractmethod
    def restore(self, path: str, version: int) -> int:
        """Make `version`'s content current again (a new commit; history is kept). Returns the new version."""

    def partition_predicate(self, partitions: dict[str, list[Any]]) -> str:
        """`partitions` (column -> values) as a predicate in the engine's dialect."""
        return " AND ".join(in_list(qualified("", c), v, self.dialect) for c, v in partitions.items()) or "true"

    def read_or_none(self, path: str) -> DataFrame | None:
        return self.read(path) if self.exists(path) else None

    def merge_replacing(self, df: DataFrame, path: str, plan: MergePlan,
                        before_write: Callable[[], None] | None = None) -> MergeResult:
        """MERGE `df` by `plan`. With `plan.replace_scope`, target rows in that scope (and in the plan's
        partitions) without a source row are deleted first; with `plan.content_hash`, source rows the target
        already holds unchanged are left out. A full outer join of the source's keys (and content hash) with
        the target's (only the plan's partitions are read, and of a large snapshot only the rows within the
        source's key range or the scope: `within_reach`) sorts every row into new, changed, unchanged or
        stale; the source's other columns join in only when there are rows to write. `before_write` is called
        once before the first commit, and not at all when there is nothing to write."""
        before_write = before_write or (lambda: None)
        if not (plan.replace_scope or plan.content_hash) or not self.exists(path):
            before_write()
            return self.merge(df, path, plan)
        snapshot = self.version(path)
        held = self.read(path, version=snapshot, partitions=plan.partition_values or None)
        reach = None if is_small(held) else within_reach(df, held, plan)
        if reach is not None:
            held = held.where(reach[0])
            plan = dataclasses.replace(plan, key_range=reach[1])
        # target columns the source lacks (an optional or evolved column) are null in the rows it writes, on
        # every engine (delta-rs would keep the target's value, Delta would fail to resolve the column)
        absent = [f for f in held.schema.fields if f.name not in df.columns]
        sorted_ = compare(df, held, plan)
        counts = one_row(sorted_.narrow.agg(*[F.count(F.when(c, 1)).alias(k) for k, c in sorted_.kinds.items()]))
        if counts["stale"] or counts["inserts"] or counts["changed"]:
            before_write()
        deleted = 0
        if counts["stale"]:
            delete_plan = MergePlan(keys=plan.keys, partition_by=plan.partition_by,
                                    partition_values=plan.partition_values, null_safe_keys=plan.null_safe_keys,
                                    delete_matched_when=plan.scope_condition("t", self.dialect))
            removed = self.merge(sorted_.stale(), path, delete_plan, snapshot)
            deleted, snapshot = removed.deleted, removed.version
            faults.point("silver:after_delete")
        if not counts["inserts"] and not counts["changed"]:
            return MergeResult(source_rows=counts["same"], deleted=deleted, version=self.version(path))
        columns = [column(c) for c in df.columns] + [F.lit(None).cast(f.dataType).alias(f.name) for f in absent]
        if not counts["changed"] and not counts["same"]:
            # every source row is new (a day of new keys, mostly): they are the source itself, no join needed
            rows = {"changed": None, "inserts": df.select(*columns)}
        else:
            written = sorted_.rows(df, columns, [k for k in ("changed", "inserts") if counts[k]])
            rows = {k: written.get(k) for k in ("changed", "inserts")}
        result = self.upsert(rows["changed"], rows["inserts"], path, plan, snapshot)
        return result.plus(unchanged=counts["same"], deleted=deleted)


for _op in ("exists", "version", "history", "upsert", "merge_replacing"):
    setattr(TableEngine, _op, _translating(getattr(TableEngine, _op)))
