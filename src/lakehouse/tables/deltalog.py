"""A Delta table opened by delta-rs from its log alone: no Spark, no JVM. The rust engine, the lake view
(`tables.view`), the engines' size estimate and lineage open tables through it."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from lakehouse.errors import TableNotFound, VersionNotFound
from lakehouse.storage import delta_options
from lakehouse.tables.paths import arrow_uri


def delta_table(path: str, version: int | None = None) -> DeltaTable:
    """delta-rs's table at `path` (local or s3://, with the store's options); TableNotFoundError when none."""
    uri = arrow_uri(path)
    return DeltaTable(uri, version=version, storage_options=delta_options(uri))


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
