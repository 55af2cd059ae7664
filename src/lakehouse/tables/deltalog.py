"""A Delta table opened by delta-rs from its log alone: no Spark, no JVM. The rust engine, the lake view
(`tables.view`), the engines' size estimate and lineage open tables through it."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from lakehouse.errors import TableNotFound, VersionNotFound
from lakehouse.storage import delta_options, filesystem, from_delta_uri
from lakehouse.tables.paths import arrow_uri


def delta_table(path: str, version: int | None = None) -> DeltaTable:
    """delta-rs's table at `path` (local or s3://, with the store's options); TableNotFoundError when none."""
    uri = arrow_uri(path)
    return DeltaTable(uri, version=version, storage_options=delta_options(uri))


def is_table(path: str) -> bool:
    """Whether a Delta log is at `path`, without loading the table's snapshot."""
    uri = arrow_uri(path)
    return DeltaTable.is_deltatable(uri, storage_options=delta_options(uri))


def open_table(path: str, version: int | None = None) -> DeltaTable | None:
    """The delta-rs table at `path` (at `version`), None when there is none; VersionNotFound for a version it does
    not have. Needs no Spark: the engine and the JVM-free lake view (`tables.view`) open tables through it."""
    try:
        table = delta_table(path)
    except TableNotFoundError:
        return None
    if version is None or version == table.version():
        return table
    if not 0 <= version <= table.version():
        raise VersionNotFound(path, version, table.version())
    try:
        table.load_as_version(version)
    except DeltaError as exc:  # an expired (checkpointed and cleaned up) version
        raise VersionNotFound(path, version, table.version()) from exc
    return table


def partition_filters(table: DeltaTable, partitions: dict[str, list[Any]] | None
                      ) -> list[tuple[str, str, list[str]]]:
    """`partitions` (column -> values) narrowed to the table's partition columns, as delta-rs file filters (the
    non-null values as text); the other columns, and null values, narrow nothing here."""
    known = table.metadata().partition_columns
    return [(c, "in", sorted({str(x) for x in v if x is not None}))
            for c, v in (partitions or {}).items() if c in known]


def table_size(path: str, partitions: dict[str, list[Any]] | None = None) -> int:
    """Bytes of the data files of the table at `path` (of `partitions`, as `partition_filters` narrows them), from
    its Delta log alone: 0 when there is no table."""
    table = open_table(path)
    if table is None:
        return 0
    files = pa.table(table.get_add_actions(flatten=True))
    for name, _, wanted in partition_filters(table, partitions):
        files = files.filter(pc.is_in(files[f"partition.{name}"].cast(pa.string()), pa.array(wanted, pa.string())))
    return int(pc.sum(files["size_bytes"]).as_py() or 0)


# stats a Delta log keeps exactly: delta-spark keeps the first 32 characters of a text column's min/max, and
# timestamps to the millisecond
_EXACT_STATS = (pa.types.is_integer, pa.types.is_date, pa.types.is_boolean, pa.types.is_string)
_TEXT_PREFIX = 32


def logged_values(path: str, column: str) -> set[Any] | None:
    """The distinct values of `column` in the table at `path`, from its Delta log alone, when the log tells them:
    a partition column's values, or a column whose every file records one value (min equal to max, exact for
    its type) or only nulls. None when the log cannot tell (no statistics, a file with several values, a type
    whose statistics are rounded) or there is no table: then the rows must be read."""
    table = open_table(path)
    if table is None:
        return None
    files = pa.table(table.get_add_actions(flatten=True))
    if "num_records" in files.column_names:
        files = files.filter(pc.greater(pc.fill_null(files["num_records"], 1), 0))  # a file of no rows holds none
    if files.num_rows == 0:
        return set()
    if f"partition.{column}" in files.column_names:
        return set(files[f"partition.{column}"].to_pylist())
    names = [f"min.{column}", f"max.{column}", f"null_count.{column}", "num_records"]
    if any(n not in files.column_names for n in names):
        return None
    if not any(exact(files[names[0]].type) for exact in _EXACT_STATS):
        return None
    values: set[Any] = set()
    for low, high, nulls, rows in zip(*(files[n].to_pylist() for n in names), strict=True):
        if nulls is None or rows is None:
            return None
        if nulls == rows:
            values.add(None)
            continue
        if low is None or low != high or (isinstance(low, str) and len(low) >= _TEXT_PREFIX):
            return None
        values.add(low)
        if nulls:
            values.add(None)
    return values


def file_count(path: str) -> int:
    """Data files of the current version of the table at `path`, from its Delta log alone: 0 when there is none."""
    table = open_table(path)
    return 0 if table is None else len(table.file_uris())


def existing_table(path: str, version: int | None = None) -> DeltaTable:
    """As `open_table`, but TableNotFound when there is no table."""
    table = open_table(path, version)
    if table is None:
        raise TableNotFound(path)
    return table


def commit_infos(table: DeltaTable, limit: int | None = None) -> list[dict[str, Any]]:
    """The commitInfo of `table`'s commits, newest first (at most `limit`), as delta-rs's `history()` gives them.
    delta-rs lists none for a table whose path holds a character its URLs escape (`#`): then they are read from
    the commit files themselves, down to the oldest one the log still keeps."""
    infos = table.history(limit)
    newest = table.version()
    if infos or newest < 0:
        return infos
    fs, root = filesystem(from_delta_uri(table.table_uri).rstrip("/"))
    for version in range(newest, -1 if limit is None else max(newest - limit, -1), -1):
        try:
            with fs.open_input_stream(f"{root}/_delta_log/{version:020d}.json") as f:
                lines = f.read().decode("utf-8").splitlines()
        except FileNotFoundError:
            break  # older commits are gone (log retention): a checkpoint stands for them
        info: dict[str, Any] = next(
            (json.loads(line)["commitInfo"] for line in lines if '"commitInfo"' in line), {})
        infos.append({**info, "version": version, "timestamp": info.get("timestamp", 0)})
    return infos
