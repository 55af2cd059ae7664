"""The rust engine's large writes: Spark's executors write the Parquet data files straight into the Delta table's
folder, and delta-rs commits them (`create_write_transaction`) with the statistics read from the files' footers.
Each row is written once, by the executors; the driver reads footers and writes the commit.

Spark writes into a folder of its own inside the table (`w-<uuid>/<partition>=<value>/part-<job id>*.parquet`), so
two writers never share Spark's `_temporary` folder; the files then move into the table's partition folders, where
both Delta engines read them, and the commit names them. A write that dies before its commit leaves only files the
log does not name (VACUUM removes them, as it removes any writer's leftovers). A frame is written this way when
the lake is on a local disk (on S3 a move is a copy: the staging hand-off writes there), it is not small (a small
frame is collected as Arrow, see `handoff`), its partition columns are of a type whose folder names are exact
(dates, integers, booleans, text), the table exists (delta-rs's writer creates a table: its first commit is a
WRITE, as on the jvm engine) and its schema is the frame's. A write that replaces partitions (bronze's day, the
quarantine's) may add columns: its commit records the merged schema, the new columns after the table's. An
append that adds columns goes through delta-rs's own writer, which merges schemas. Otherwise the caller uses the
staging hand-off.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction, RemoveAction
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from lakehouse.frames import is_small
from lakehouse.storage import filesystem, is_remote
from lakehouse.tables.handoff import nullable
from lakehouse.tables.paths import join, spark_uri

# partition column types whose value Spark's folder name holds exactly (what the Delta log records as text)
EXACT_PARTITION_TYPES = (T.DateType, T.StringType, T.IntegerType, T.LongType, T.ShortType, T.ByteType,
                         T.BooleanType)
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# column types whose Parquet min/max become the Delta statistics: the values delta-rs and delta-spark compare
# exactly (timestamps are kept to milliseconds in Delta statistics, decimals need their exact text, floats NaN
# handling: their files are skipped by null counts only)
_STAT_TYPES = (pa.types.is_integer, pa.types.is_string, pa.types.is_large_string, pa.types.is_date32,
               pa.types.is_boolean)


@dataclass(frozen=True)
class Written:
    """The data files a write left in the table's folder, as the commit's add actions."""

    adds: list[AddAction]

    @property
    def rows(self) -> int:
        return sum(json.loads(a.stats)["numRecords"] for a in self.adds)


def direct_schema(df: DataFrame, root: str, partition_by: list[str], table: DeltaTable | None,
                  evolve: bool = False) -> pa.Schema | None:
    """The schema the commit records when `df` goes to the table at `root` as files Spark writes in place; None
    when it goes through the staging hand-off. The frame has the table's columns and types; with `evolve` it may
    also carry new ones, which the commit adds after the table's (as a schema merge does; only a commit that
    replaces partitions records a schema in delta-rs)."""
    if table is None or is_small(df) or is_remote(root):
        return None
    fields = {f.name: f for f in df.schema.fields}
    if any(c not in fields or not isinstance(fields[c].dataType, EXACT_PARTITION_TYPES) for c in partition_by):
        return None
    held = pa.schema(table.schema().to_arrow())
    given = arrow_schema(df.schema)
    if list(table.metadata().partition_columns) != list(partition_by):
        return None
    # the same columns and types; a nested field Spark declares non-null is the table's nullable one (the commit
    # keeps the table's schema)
    if [(f.name, _loose(f.type)) for f in held] == [(f.name, _loose(f.type)) for f in given]:
        return held
    types = {f.name: _loose(f.type) for f in given}
    if not evolve or any(types.get(f.name) != _loose(f.type) for f in held):
        return None
    return pa.schema([*held, *[f for f in given if f.name not in held.names]])


def _loose(kind: pa.DataType) -> pa.DataType:
    """The type with every nested field nullable."""
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _loose(f.type)) for f in kind])
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_loose(kind.value_type))
    if pa.types.is_map(kind):
        return pa.map_(_loose(kind.key_type), _loose(kind.item_type))
    return kind


def arrow_schema(schema: T.StructType) -> pa.Schema:
    """The Delta schema of a frame, as delta-rs receives it (nullable top-level fields, UTC timestamps)."""
    return nullable(to_arrow_schema(schema, timestamp_utc=True))


def folder_value(value: Any) -> str | None:
    """A partition value as Spark names its folder, for the values whose name needs no escaping (None: others)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | dt.date) and not isinstance(value, dt.datetime):
        return str(value) if isinstance(value, int) else value.isoformat()
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
        return value
    return None


def write_files(df: DataFrame, root: str, partition_by: list[str], only: dict[str, Any] | None = None
                ) -> Written:
    """Spark writes `df` into a fresh folder of the table at `root`; its data files are then moved into the
    table's partition folders (a rename on a local disk; their names, made by Spark, hold the write's id);
    returns their add actions. With `only` (each partition column's one value, every `folder_value`), the rows
    all belong to that partition: Spark writes them into its folder, without sorting them by the partition
    columns first as a partitioned write does, and a row of another partition fails the write."""
    folder = f"w-{uuid.uuid4().hex}"
    if only:
        inside = functools.reduce(lambda a, b: a & b, [F.col(c).eqNullSafe(F.lit(v)) for c, v in only.items()])
        rows = df.where(F.assert_true(inside, F.lit(f"a row outside the partition {only} being written"))
                        .isNull()).drop(*partition_by)
        into = join(root, folder, *[f"{c}={folder_value(only[c])}" for c in partition_by])
        rows.write.mode("errorifexists").parquet(spark_uri(into))
    else:
        df.write.mode("errorifexists").partitionBy(*partition_by).parquet(spark_uri(join(root, folder)))
    fs, base = filesystem(root)
    base = base.rstrip("/")
    adds: list[AddAction] = []
    names = {f.name: f for f in arrow_schema(df.schema)}
    found = fs.get_file_info(pafs.FileSelector(f"{base}/{folder}", recursive=True))
    for info in sorted((i for i in found if i.type == pafs.FileType.File), key=lambda i: i.path):
        relative = info.path[len(base) + len(folder) + 2:]  # <partition folders>/<file>
        if relative.rsplit("/", 1)[-1].startswith((".", "_")):  # Spark's checksums and success marker
            continue
        with fs.open_input_file(info.path) as handle:
            metadata = pq.ParquetFile(handle).metadata
        if metadata.num_rows == 0:  # Spark writes an empty file for an empty frame: nothing to commit
            continue
        if "/" in relative:
            fs.create_dir(f"{base}/{relative.rsplit('/', 1)[0]}", recursive=True)
        fs.move(info.path, f"{base}/{relative}")
        adds.append(AddAction(
            path=relative, size=info.size, partition_values=_partition_values(relative),
            modification_time=int(info.mtime_ns // 1_000_000) if info.mtime_ns else 0, data_change=True,
            stats=json.dumps(_statistics(metadata, names), separators=(",", ":"))))
    fs.delete_dir(f"{base}/{folder}")
    return Written(adds)


def _partition_values(relative: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for part in relative.split("/")[:-1]:
        name, _, value = part.partition("=")
        text = unquote(value)
        values[unquote(name)] = None if text == HIVE_NULL else text
    return values


def _statistics(metadata: pq.FileMetaData, fields: dict[str, pa.Field]) -> dict[str, Any]:
    """numRecords, and per top-level column of the file the null count and, for the types in _STAT_TYPES, min
    and max over its row groups."""
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    exact: set[str] = set()
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            name = chunk.path_in_schema
            if "." in name or name not in fields:  # a nested leaf: no statistics of its own here
                continue
            stats = chunk.statistics
            if stats is None or not stats.has_null_count:
                nulls[name] = -1
                continue
            nulls[name] = -1 if nulls.get(name, 0) < 0 else nulls.get(name, 0) + stats.null_count
            if not any(test(fields[name].type) for test in _STAT_TYPES):
                continue
            if g == 0:
                exact.add(name)
            if not stats.has_min_max:
                if stats.null_count != group.num_rows:  # values without bounds: no bounds for the file
                    exact.discard(name)
                continue
            low[name] = stats.min if name not in low else min(low[name], stats.min)
            high[name] = stats.max if name not in high else max(high[name], stats.max)
    bounded = [n for n in exact if n in low]
    return {"numRecords": metadata.num_rows,
            "minValues": {n: _json_value(low[n]) for n in bounded},
            "maxValues": {n: _json_value(high[n]) for n in bounded},
            "nullCount": {n: v for n, v in nulls.items() if v >= 0}}


def _json_value(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def commit(table: DeltaTable, written: Written, partition_by: list[str], properties: CommitProperties,
           replace: list[tuple[str, str, list[str]]] | None = None, schema: pa.Schema | None = None) -> None:
    """One commit adding the written files, based on `table`'s version: appended, or replacing the partitions
    `replace` names (delta-rs removes their files in the same commit). The table's schema stays, or becomes
    `schema` (its columns and more: `direct_schema`) when partitions are replaced."""
    held = pa.schema(table.schema().to_arrow())
    if schema is not None and schema != held and replace is None:
        raise ValueError("an appending commit cannot change the table's schema")
    actions: list[AddAction | RemoveAction] = [*written.adds]
    table.create_write_transaction(actions, mode="append" if replace is None else "overwrite",
                                   schema=held if schema is None else schema, partition_by=partition_by or None,
                                   partition_filters=replace, commit_properties=properties)
