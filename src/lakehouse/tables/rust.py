"""The `rust` engine: Spark computes, delta-rs (the `deltalake` package) commits.

Data crosses from Spark to delta-rs through staging Parquet written by Spark's executors; delta-rs reads it
as a streamed Arrow dataset, so a day's rows are never collected into the driver's memory. Spark reads a
delta-rs table through the table's active file list (never a folder glob: removed files stay on disk until
vacuum), with the table's schema and `basePath` so partition columns come back typed.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from lakehouse.tables.engine import MergePlan, MergeResult, TableEngine, in_list
from lakehouse.tables.paths import arrow_uri, is_remote, join, spark_uri

MERGE_METRICS = ("num_source_rows", "num_target_rows_inserted", "num_target_rows_updated",
                 "num_target_rows_deleted", "num_target_files_added", "num_target_files_removed")


def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema])


class RustEngine(TableEngine):
    name = "rust"

    # ------------------------------------------------------------ staging

    @contextlib.contextmanager
    def _staged(self, df: DataFrame) -> Iterator[pads.Dataset]:
        """Write `df` to staging Parquet with Spark and yield it as an Arrow dataset (read lazily, in batches)."""
        folder = join(self.layout.staging("engine"), uuid.uuid4().hex)
        schema = _nullable(to_arrow_schema(df.schema, timestamp_utc=True))
        df.write.mode("overwrite").parquet(folder)
        try:
            yield pads.dataset(folder, format="parquet", schema=schema)
        finally:
            if not is_remote(folder):
                shutil.rmtree(folder, ignore_errors=True)

    def _table(self, path: str, version: int | None = None) -> DeltaTable | None:
        try:
            return DeltaTable(arrow_uri(path), version=version)
        except TableNotFoundError:
            return None

    # ------------------------------------------------------------ reads

    def exists(self, path: str) -> bool:
        path = arrow_uri(path)
        return DeltaTable.is_deltatable(path)

    def version(self, path: str) -> int | None:
        path = arrow_uri(path)
        table = self._table(path)
        return None if table is None else table.version()

    def read(self, path: str, version: int | None = None, partitions: dict[str, list[Any]] | None = None
             ) -> DataFrame:
        table = self._table(path, version)
        if table is None:
            raise FileNotFoundError(f"no Delta table at {path}")
        schema = from_arrow_schema(pa.schema(table.schema().to_arrow()))
        selected = {c: v for c, v in (partitions or {}).items() if c in table.metadata().partition_columns}
        filters = [(c, "in", sorted({str(x) for x in v if x is not None})) for c, v in selected.items()]
        if any(not values for _, _, values in filters):
            files = []
        else:
            files = [spark_uri(f) for f in table.file_uris(file_pruning_predicate=filters or None)]
        if not files:
            return self.spark.createDataFrame([], schema)
        df = (self.spark.read.schema(schema).option("basePath", spark_uri(table.table_uri.rstrip("/")))
              .parquet(*files).select(*[f"`{c}`" for c in schema.names]))
        # partitions not known to the table (or null values) are filtered as rows
        rest = {c: v for c, v in (partitions or {}).items() if c not in selected or None in v}
        for column, values in rest.items():
            df = df.where(F.expr(in_list(f"`{column}`", values)))
        return df

    # ------------------------------------------------------------ writes

    def replace_partitions(self, df: DataFrame, path: str, partition_by: list[str], where: str) -> int:
        path = arrow_uri(path)
        with self._staged(df) as data:
            reader = data.scanner().to_reader()
            if self._table(path) is None:
                write_deltalake(path, reader, partition_by=partition_by or None, mode="append")
            else:
                write_deltalake(path, reader, partition_by=partition_by or None, mode="overwrite",
                                predicate=where, schema_mode="merge")
        return DeltaTable(path).version()

    def append(self, df: DataFrame, path: str, partition_by: list[str] | None = None,
               txn: tuple[str, int] | None = None) -> int:
        path = arrow_uri(path)
        table = self._table(path)
        if txn and table is not None and (table.transaction_version(txn[0]) or -1) >= txn[1]:
            return table.version()
        properties = CommitProperties(app_transactions=[Transaction(*txn)]) if txn else None
        with self._staged(df) as data:
            write_deltalake(path, data.scanner().to_reader(), partition_by=partition_by or None, mode="append",
                            schema_mode="merge", commit_properties=properties)
        return DeltaTable(path).version()

    def merge(self, df: DataFrame, path: str, plan: MergePlan) -> MergeResult:
        path = arrow_uri(path)
        with self._staged(df) as data:
            table = self._table(path)
            if table is None and plan.delete_matched_when:
                return MergeResult()
            if table is None:
                write_deltalake(path, data.scanner().to_reader(), partition_by=plan.partition_by or None,
                                mode="append")
                rows = data.count_rows()
                return MergeResult(source_rows=rows, inserted=rows, files_added=len(DeltaTable(path).file_uris()),
                                   version=DeltaTable(path).version())
            merger = table.merge(
                data.scanner().to_reader(), predicate=plan.condition(), source_alias="s", target_alias="t",
                merge_schema=plan.evolve_schema, streamed_exec=True)
            if plan.delete_matched_when:
                merger = merger.when_matched_delete(predicate=plan.delete_matched_when)
            else:
                merger = merger.when_matched_update_all(predicate=plan.update_when)
                merger = merger.when_not_matched_insert_all()
            metrics = merger.execute()
        return MergeResult.from_metrics(metrics, MERGE_METRICS, DeltaTable(path).version())

    # ------------------------------------------------------------ maintenance

    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]:
        path = arrow_uri(path)
        table = self._table(path)
        return [] if table is None else list(table.history(limit))

    def optimize(self, path: str) -> dict[str, Any]:
        path = arrow_uri(path)
        return dict(DeltaTable(path).optimize.compact())

    def vacuum(self, path: str, retention_hours: int, dry_run: bool = False) -> list[str]:
        path = arrow_uri(path)
        return list(DeltaTable(path).vacuum(retention_hours=retention_hours, dry_run=dry_run,
                                            enforce_retention_duration=False))

    def restore(self, path: str, version: int) -> int:
        path = arrow_uri(path)
        table = DeltaTable(path)
        table.restore(version)
        return DeltaTable(path).version()

    def delete(self, path: str, where: str) -> int:
        path = arrow_uri(path)
        return int(DeltaTable(path).delete(where).get("num_deleted_rows", 0))
