"""How a Spark DataFrame's rows reach delta-rs (the rust engine's writes).

Through staging Parquet written by Spark's executors, which delta-rs reads as a stream of small Arrow batches, so a
day's rows are never collected into the driver's memory. A frame that Spark's planner estimates under
`frames.SMALL_FRAME_BYTES` (a week of small days, a gold rebuild) skips the staging files: it comes to the driver
as Arrow in one job, which costs a fraction of a Spark write and its commit protocol.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from lakehouse.frames import is_small
from lakehouse.tables.paths import sweep


def nullable(schema: pa.Schema) -> pa.Schema:
    """The schema with every top-level field nullable (how delta-rs receives the rows)."""
    return pa.schema([f.with_nullable(True) for f in schema])


# rows per Arrow batch handed to delta-rs: its writer and MERGE buffer a number of batches, so the batch size
# (not the day's size) bounds the memory a write needs
STAGED_BATCH_ROWS = 8192


class InMemory:
    """A small frame's rows, collected as Arrow. They pass through Parquet in memory, as staged rows pass through
    Parquet on disk: delta-rs's writer can panic ("Join Error") on Spark's own Arrow batches of structs, and
    writes their Parquet form."""

    def __init__(self, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="none")
        self.table = pq.read_table(pa.BufferReader(sink.getvalue()), schema=table.schema)

    def reader(self) -> pa.RecordBatchReader:
        return self.table.to_reader(max_chunksize=STAGED_BATCH_ROWS)

    def count_rows(self) -> int:
        return int(self.table.num_rows)


def _non_null_inside(dtype: T.DataType) -> bool:
    """Whether a nested field of the type is declared non-null. Spark's Arrow batches hold nulls in such a field
    where its struct is null, which Arrow's cast and delta-rs's writer refuse; Parquet leaves them out."""
    if isinstance(dtype, T.StructType):
        return any(not f.nullable or _non_null_inside(f.dataType) for f in dtype.fields)
    if isinstance(dtype, T.ArrayType):
        return _non_null_inside(dtype.elementType)
    if isinstance(dtype, T.MapType):
        return _non_null_inside(dtype.keyType) or _non_null_inside(dtype.valueType)
    return False


class Staged:
    """Spark's staging Parquet, read file by file and row group by row group in small batches."""

    def __init__(self, dataset: pads.Dataset, schema: pa.Schema) -> None:
        self.dataset = dataset
        self.schema = schema

    def _batches(self) -> Iterator[pa.RecordBatch]:
        fs = self.dataset.filesystem
        for path in self.dataset.files:
            with fs.open_input_file(path) as handle:
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=STAGED_BATCH_ROWS, use_threads=False):
                    yield pa.RecordBatch.from_arrays(
                        [batch.column(f.name).cast(f.type) for f in self.schema], schema=self.schema)

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._batches())

    def count_rows(self) -> int:
        return int(self.dataset.count_rows())


@contextlib.contextmanager
def handed_over(df: DataFrame, folder: str) -> Iterator[Staged | InMemory]:
    """`df`'s rows for delta-rs: written to staging Parquet in `folder` (deleted afterwards) and read in small
    batches; a frame estimated small is collected as Arrow instead, unless a nested field of it is declared
    non-null."""
    schema = nullable(to_arrow_schema(df.schema, timestamp_utc=True))
    if is_small(df) and not any(_non_null_inside(f.dataType) for f in df.schema.fields):
        table = df.toArrow()
        yield InMemory(pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema))
        return
    df.write.mode("overwrite").parquet(folder)
    try:
        yield Staged(pads.dataset(folder, format="parquet", schema=schema), schema)
    finally:
        sweep(folder)
