"""The `rust` engine: Spark computes, delta-rs (the `deltalake` package) commits.

Data crosses from Spark to delta-rs as `handoff` describes: staging Parquet read in small batches, or, for a
small frame, Arrow collected in one job.

Spark reads a delta-rs table through the table's active file list (never a folder glob: removed files stay on
disk until vacuum), with the table's schema and `basePath` so partition columns come back typed.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from lakehouse import faults
from lakehouse.errors import CommitConflict, LakehouseError, SettingsError, TableNotFound
from lakehouse.frames import empty_frame
from lakehouse.sql import column, ident, in_list, qualified
from lakehouse.storage import delta_options, filesystem, from_delta_uri, localize, spark_literal, spark_reads
from lakehouse.tables import direct
from lakehouse.tables.deltalog import delta_table, existing_table, open_table, partition_filters
from lakehouse.tables.engine import (
    MergePlan,
    MergeResult,
    OptimizeResult,
    TableEngine,
    VacuumResult,
    relative_to_table,
)
from lakehouse.tables.handoff import InMemory, Staged, handed_over, nullable
from lakehouse.tables.paths import LakeLayout, arrow_uri, join, spark_uri, sweep

MERGE_METRICS = ("num_source_rows", "num_target_rows_inserted", "num_target_rows_updated",
                 "num_target_rows_deleted", "num_target_files_added", "num_target_files_removed")


# the rows per Parquet row group delta-rs writes: a row group is buffered in memory until it is complete
WRITER = WriterProperties(max_row_group_size=128 * 1024)
# every silver/gold commit of the pipeline carries this application id: two writers whose commits both carry it
# conflict, so an insert decided against one snapshot cannot land beside a concurrent writer's insert
WRITER_APP_ID = "lakehouse.writer"


def _write(path: str, data: pa.RecordBatchReader | pa.Table, **options: Any) -> None:
    write_deltalake(path, data, storage_options=delta_options(path), **options)


def _applied(table: DeltaTable, txn: tuple[str, int] | None) -> bool:
    """Whether `table` already holds the write of application transaction `txn` (app id, version); version 0 is
    a version like any other."""
    if not txn:
        return False
    done = table.transaction_version(txn[0])
    return done is not None and done >= txn[1]


def _marker(base_version: int | None) -> list[Transaction]:
    return [Transaction(WRITER_APP_ID, (base_version or 0) + 1)]


# delta-rs reports a lost commit race with these words when it is not a CommitFailedError
_CONFLICT_WORDS = ("Transaction failed", "version already exists", "CommitFailed")


class RustEngine(TableEngine):
    name = "rust"
    dialect = "delta-rs"

    def __init__(self, spark: SparkSession, layout: LakeLayout) -> None:
        odd = sorted(set("%[]") & set(layout.root))
        if odd:
            # delta-rs decodes `%XX` in a table path when it reads the log but not when it writes data files (such a
            # table would not read back), and takes `[` `]` for an IPv6 host
            raise SettingsError(
                f"the lake root {layout.root!r} contains {' and '.join(repr(c) for c in odd)}, which the rust "
                "engine (delta-rs) cannot use in a path ('%41' is read as 'A', '[' starts a host name): rename "
                "the folder, or use the jvm engine")
        super().__init__(spark, layout)

    def _commit(self, transactions: list[Transaction] | None = None) -> CommitProperties:
        """Commit properties: the application transactions, and the commit tag as the commit's `userMetadata`
        (the field Delta's own writers use for it)."""
        return CommitProperties(app_transactions=transactions,
                                custom_metadata={"userMetadata": self.commit_tag} if self.commit_tag else None)

    def translate(self, exc: Exception, path: str) -> LakehouseError | None:
        if isinstance(exc, CommitFailedError) or (
                isinstance(exc, DeltaError) and any(w in str(exc) for w in _CONFLICT_WORDS)):
            return CommitConflict(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if isinstance(exc, TableNotFoundError):
            return TableNotFound(path)
        return None

    # ------------------------------------------------------------ staging

    def _staged(self, df: DataFrame) -> contextlib.AbstractContextManager[Staged | InMemory]:
        return handed_over(df, join(self.layout.staging("engine"), uuid.uuid4().hex))

    def _table(self, path: str, version: int | None = None) -> DeltaTable | None:
        return open_table(path, version)

    def _existing(self, path: str) -> DeltaTable:
        return existing_table(path)

    # ------------------------------------------------------------ reads

    def read(self, path: str, version: int | None = None, partitions: dict[str, list[Any]] | None = None
             ) -> DataFrame:
        table = self._table(path, version)
        if table is None:
            raise TableNotFound(path)
        schema = from_arrow_schema(pa.schema(table.schema().to_arrow()))
        filters = partition_filters(table, partitions)
        selected = {c for c, _, _ in filters}
        if any(not values for _, _, values in filters):
            files = []
        else:
            files = [spark_uri(from_delta_uri(f, table.table_uri))
                     for f in table.file_uris(file_pruning_predicate=filters or None)]
        if not files:
            return empty_frame(self.spark, schema)
        root = spark_uri(from_delta_uri(table.table_uri.rstrip("/")))
        if not spark_reads(self.spark, root):  # no S3 connector: Spark reads local copies of the files
            root, files = self._mirrored(root, files)
        df = (self.spark.read.schema(schema).option("basePath", root)
              .parquet(*[spark_literal(f) if any(c in f for c in "[]{}*?") else f for f in files]).select(*[ident(c) for c in schema.names]))
        # partitions not known to the table (or null values) are filtered as rows
        rest = {c: v for c, v in (partitions or {}).items() if c not in selected or None in v}
        for name, values in rest.items():
            df = df.where(F.expr(in_list(qualified("", name), values)))
        return df

    def _mirrored(self, root: str, files: list[str]) -> tuple[str, list[str]]:
        """Local copies of a remote table's data files, below a folder of this engine's own staging (data files
        are immutable under their names, so a file copied once serves every later read); `release` deletes it."""
        folder = os.path.join(self.layout.staging("mirror", self.instance),
                              uuid.uuid5(uuid.NAMESPACE_URL, root).hex)
        return folder, localize(files, folder, relative_to=root)

    def release(self) -> None:
        sweep(self.layout.staging("mirror", self.instance))

    # ------------------------------------------------------------ writes

    def _direct(self, df: DataFrame, path: str, partition_by: list[str], table: DeltaTable | None,
                properties: CommitProperties, replace: dict[str, list[Any]] | None = None) -> direct.Written | None:
        """`df` written by Spark into the table's folder and committed by delta-rs in one commit based on
        `table`'s version (`tables.direct`): the files written, or None when the frame goes through the staging
        hand-off instead."""
        schema = direct.direct_schema(df, path, partition_by, table, evolve=replace is not None)
        if table is None or schema is None:
            return None
        filters = None
        if replace is not None:
            filters = partition_filters(table, replace)
            if len(filters) != len(replace) or any(None in v or not v for v in replace.values()):
                return None  # rows outside the partition columns are replaced by delta-rs's own writer
        # one partition replaced (bronze's day): its folder written as such, no sort by the partition columns
        only = {c: replace[c][0] for c in partition_by} if replace is not None and set(replace) == set(
            partition_by) and all(len(replace[c]) == 1 for c in partition_by) else None
        if only is not None and any(direct.folder_value(v) is None for v in only.values()):
            only = None
        written = direct.write_files(df, path, partition_by, only)
        direct.commit(table, written, partition_by, properties, filters, schema)
        return written

    def replace_partitions(self, df: DataFrame, path: str, partition_by: list[str],
                           partitions: dict[str, list[Any]]) -> int:
        where = self.partition_predicate(partitions)
        path = arrow_uri(path)
        if self._direct(df, path, partition_by, self._table(path), self._commit(), replace=partitions):
            return delta_table(path).version()
        with self._staged(df) as data:
            reader = data.reader()
            if self._table(path) is None:
                _write(path, reader, partition_by=partition_by or None, mode="append", writer_properties=WRITER,
                                commit_properties=self._commit())
            else:
                _write(path, reader, partition_by=partition_by or None, mode="overwrite",
                                predicate=where, schema_mode="merge", writer_properties=WRITER,
                                commit_properties=self._commit())
        return delta_table(path).version()

    def append(self, df: DataFrame, path: str, partition_by: list[str] | None = None,
               txn: tuple[str, int] | None = None) -> int:
        path = arrow_uri(path)
        table = self._table(path)
        if table is not None and _applied(table, txn):
            return table.version()
        properties = self._commit([Transaction(*txn)] if txn else None)
        if self._direct(df, path, partition_by or [], table, properties):
            return delta_table(path).version()
        with self._staged(df) as data:
            _write(path, data.reader(), partition_by=partition_by or None, mode="append",
                            schema_mode="merge", commit_properties=properties,
                            writer_properties=WRITER)
        return delta_table(path).version()

    def append_rows(self, rows: Sequence[dict[str, Any]], schema: T.StructType, path: str,
                    partition_by: list[str] | None = None, txn: tuple[str, int] | None = None) -> int:
        """Records held in memory go to delta-rs as Arrow directly: no Spark job, no staging files."""
        path = arrow_uri(path)
        table = self._table(path)
        if table is not None and _applied(table, txn):
            return table.version()
        arrow_schema = nullable(to_arrow_schema(schema, timestamp_utc=True))
        # naive datetimes are UTC throughout the pipeline, which is how Arrow reads them for a UTC column
        data = pa.Table.from_pylist([dict(r) for r in rows], schema=arrow_schema)
        _write(path, data, partition_by=partition_by or None, mode="append", schema_mode="merge",
               commit_properties=self._commit([Transaction(*txn)] if txn else None), writer_properties=WRITER)
        return delta_table(path).version()

    def merge(self, df: DataFrame, path: str, plan: MergePlan, base_version: int | None = None) -> MergeResult:
        path = arrow_uri(path)
        with self._staged(df) as data:
            table = self._table(path, base_version)
            if table is None and plan.delete_matched_when:
                return MergeResult()
            if table is None:
                _write(path, data.reader(), partition_by=plan.partition_by or None, mode="append",
                                commit_properties=self._commit(_marker(None)), writer_properties=WRITER)
                created = delta_table(path)
                rows = data.count_rows()
                return MergeResult(source_rows=rows, inserted=rows, files_added=len(created.file_uris()),
                                   version=created.version())
            merger = table.merge(
                data.reader(), predicate=plan.condition(self.dialect), source_alias="s", target_alias="t",
                merge_schema=plan.evolve_schema, streamed_exec=True, writer_properties=WRITER,
                commit_properties=self._commit(_marker(table.version())))
            if plan.delete_matched_when:
                merger = merger.when_matched_delete(predicate=plan.delete_matched_when)
            else:
                merger = merger.when_matched_update_all(predicate=plan.update_when)
                merger = merger.when_not_matched_insert_all()
            metrics = merger.execute()
        return MergeResult.from_metrics(metrics, MERGE_METRICS, delta_table(path).version())

    def upsert(self, changed: DataFrame | None, inserts: DataFrame | None, path: str, plan: MergePlan,
               base_version: int | None) -> MergeResult:
        """Changed rows go through MERGE (its source streamed); new rows, already known to match no target row,
        are appended: no join against the target, and on a local lake Spark's executors write their files. Up to
        two commits, each based on the version the previous one made and
        marked with WRITER_APP_ID, so a concurrent pipeline commit in between fails this one instead of
        letting the same key be inserted twice."""
        result = MergeResult(version=base_version)
        if changed is not None:
            result = self.merge(changed, path, plan, base_version)
        if inserts is not None:
            if changed is not None:
                faults.point("silver:between_commits")
            path = arrow_uri(path)
            table = delta_table(path, version=result.version)
            # as MERGE's insert-all does: target columns the source lacks are null, and source columns the
            # target lacks are added only when the plan evolves the schema
            target = from_arrow_schema(pa.schema(table.schema().to_arrow()))
            inserts = inserts.select(
                *[column(f.name) if f.name in inserts.columns else F.lit(None).cast(f.dataType).alias(f.name)
                  for f in target.fields],
                *[column(c) for c in inserts.columns if plan.evolve_schema and c not in target.names])
            appended = None if plan.evolve_schema and set(inserts.columns) - set(target.names) else \
                self._direct(inserts, path, plan.partition_by, table, self._commit(_marker(result.version)))
            if appended is not None:
                return result.plus(inserted=appended.rows, files_added=len(appended.adds),
                                   version=delta_table(path).version())
            with self._staged(inserts) as data:
                write_deltalake(table, data.reader(), mode="append",
                                schema_mode="merge" if plan.evolve_schema else None,
                                commit_properties=self._commit(_marker(result.version)), writer_properties=WRITER)
                rows = data.count_rows()
            after = delta_table(path)
            added = (after.history(1)[0].get("operationMetrics") or {}).get("num_added_files", 0)
            result = result.plus(inserted=rows, files_added=int(added or 0), version=after.version())
        return result

    # ------------------------------------------------------------ maintenance

    def optimize(self, path: str) -> OptimizeResult:
        table = self._existing(path)
        metrics = table.optimize.compact(writer_properties=WRITER, commit_properties=self._commit())
        return OptimizeResult(files_added=int(metrics.get("numFilesAdded", 0)),
                              files_removed=int(metrics.get("numFilesRemoved", 0)),
                              version=delta_table(path).version())

    def vacuum(self, path: str, retention_hours: int, dry_run: bool = False) -> VacuumResult:
        """delta-rs lists every expired file the log still names, also ones an earlier vacuum deleted; only the
        files present are reported."""
        table = self._existing(path)
        uri = arrow_uri(path)
        candidates = table.vacuum(retention_hours=retention_hours, dry_run=True, enforce_retention_duration=False,
                                   full=True)  # also files no commit names (a writer that died before its commit)
        fs, base = filesystem(uri)
        present = []
        for f in candidates:  # paths relative to the table root
            full = filesystem(f)[1] if "://" in f else f if f.startswith("/") else f"{base}/{f}"
            if fs.get_file_info(full).type == pafs.FileType.File:
                present.append(relative_to_table(uri, f))
        if not dry_run and present:
            table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False, full=True)
        return VacuumResult(sorted(present), dry_run)

    def restore(self, path: str, version: int) -> int:
        self._table(path, version)  # VersionNotFound for a version the table does not have
        table = self._existing(path)
        path = arrow_uri(path)
        table.restore(version, commit_properties=self._commit())
        return delta_table(path).version()

    def delete(self, path: str, where: str) -> int:
        return int(self._existing(path).delete(where, commit_properties=self._commit()).get("num_deleted_rows", 0))
