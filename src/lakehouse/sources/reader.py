"""Read a day's (or a batch of days') raw files of a dataset, as received, with lineage columns; each file on its
own terms.

Every file is probed first (`probe.py`): a file that cannot be read is set aside whole with its cause, the others
are read. Files of one shape (a CSV header, a Parquet schema) are read by one Spark scan, so a day of many files
is not many Spark jobs (the built-in formats' scans are in `scans.py`), and the scans are lined up on one set
of bronze columns (`columns.py` names the technical ones):

- CSV: columns mapped by each file's own header (order never matters; a declared column a file lacks is null
  for its rows; other columns are kept under their names). Values are text; a line the parser cannot split is
  kept whole in `_raw_record` and quarantined as `malformed_record`. A file with a quoted field that holds a
  line break is read with the multi-line parser (only such files: the probe looks for them).
- JSON: the declared shape with every leaf read as text, so nothing is lost before the typed cast; an object or
  array where the schema has a scalar is a `type_mismatch` (recorded in `_read_errors`), never its JSON text.
  Keys the schema does not declare (new top-level keys, new fields of a declared struct) are found per file
  (`json_keys.py`) and kept as text columns (an object or array as its JSON text).
- Parquet: declared columns converted to the spec's types where the file's type differs but converts value by
  value (a value that would change is null plus a `_read_errors` entry); a column whose type cannot be
  reconciled rejects the file. Undeclared columns are kept as text. Files with nanosecond timestamps are
  rewritten (micros) before Spark reads them.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from lakehouse.sources.columns import NO_READ_ERRORS, RAW_RECORD, READ_ERRORS, TECHNICAL
from lakehouse.sources.files import RawDay, RawFile
from lakehouse.sources.formats import format_of
from lakehouse.sources.json_keys import new_keys
from lakehouse.sources.probe import Rejection, Shape, probe
from lakehouse.sources.scans import as_text
from lakehouse.specs.models import DatasetSpec
from lakehouse.specs.names import snake_case
from lakehouse.sql import ident, literal, sql_type
from lakehouse.storage import filesystem, localize, spark_literal, spark_reads, spark_uri


@dataclass
class RawRead:
    """A day's raw rows (None when no file could be read) and what happened to each file."""

    df: DataFrame | None
    read: list[RawFile] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # raw columns the files have (declared ones may be absent)
    scanned: bool = False  # some file of rows was read (not only empty or rejected files)


def _by_file(values: dict[str, str]) -> str:
    """SQL: the value for the row's file, looked up by the path Spark reads it from."""
    pairs = ", ".join(f"{literal(k)}, {literal(v)}" for k, v in values.items())
    return f"element_at(map({pairs}), _metadata.file_path)"


def _spark_path(spark: SparkSession, path: str) -> str:
    """A file's path as Spark's `_metadata.file_path` shows it."""
    jvm: Any = spark._jvm
    uri = str(jvm.org.apache.hadoop.fs.Path(spark_uri(path)).toUri().toString())
    return uri if "://" in spark_uri(path) else "file:" + uri


class DayReader:
    """Reads one RawDay of a dataset into bronze rows."""

    def __init__(self, spark: SparkSession, spec: DatasetSpec, staging: str) -> None:
        self.spark = spark
        self.spec = spec
        self.staging = staging

    # ------------------------------------------------------------------ scans

    # ------------------------------------------------------------------ nanosecond Parquet

    def _converted(self, f: RawFile) -> RawFile:
        """A copy of a Parquet file with nanosecond timestamps as microseconds (what Spark reads), row group by
        row group; sub-microsecond digits are dropped, as Spark keeps microseconds."""
        def micros(t: pa.DataType) -> pa.DataType:
            if pa.types.is_timestamp(t) and t.unit == "ns":
                return pa.timestamp("us", t.tz)
            if pa.types.is_list(t):
                return pa.list_(micros(t.value_type))
            if pa.types.is_large_list(t):
                return pa.large_list(micros(t.value_type))
            if pa.types.is_struct(t):
                return pa.struct([pa.field(t.field(i).name, micros(t.field(i).type)) for i in range(t.num_fields)])
            if pa.types.is_map(t):
                return pa.map_(micros(t.key_type), micros(t.item_type))
            return t

        target = f"{self.staging.rstrip('/')}/converted/{uuid.uuid4().hex}.parquet"
        out_fs, out_path = filesystem(target)
        out_fs.create_dir(out_path.rsplit("/", 1)[0], recursive=True)
        in_fs, inner = filesystem(f.path)
        source = pq.ParquetFile(in_fs.open_input_file(inner))
        schema = pa.schema([pa.field(x.name, micros(x.type)) for x in source.schema_arrow])
        with out_fs.open_output_stream(out_path) as sink, pq.ParquetWriter(sink, schema) as writer:
            for i in range(source.num_row_groups):
                writer.write_table(source.read_row_group(i).cast(schema, safe=False))
        local = target if "://" in target else os.path.abspath(target)
        return replace(f, path=local)

    # ------------------------------------------------------------------ the day

    def shapes(self, day: RawDay) -> tuple[dict[tuple[Any, ...], tuple[Shape, list[RawFile]]], list[RawFile],
                                           list[Rejection]]:
        """Files grouped by shape, empty files, rejected files."""
        groups: dict[tuple[Any, ...], tuple[Shape, list[RawFile]]] = {}
        empty, rejected = [], []
        for f in day.files:
            found = probe(self.spec, f)
            if isinstance(found, Rejection):
                rejected.append(found)
            elif found.empty:
                empty.append(f)
            else:
                groups.setdefault(found.key, (found, []))[1].append(f)
        return groups, empty, rejected

    def with_json_keys(self, found: list[dict[tuple[Any, ...], tuple[Shape, list[RawFile]]]]
                       ) -> list[dict[tuple[Any, ...], tuple[Shape, list[RawFile]]]]:
        """JSON: each file's shape with its undeclared keys (one Spark pass over all the files), files regrouped
        by them. Other formats: as they are."""
        if not format_of(self.spec).keys_per_record:
            return found
        files = [f for groups in found for _, fs in groups.values() for f in fs]
        paths = {f.path: f.path for f in files}
        if files and not spark_reads(self.spark, files[0].path):  # no connector for the store: local copies
            local = localize(list(paths), f"{self.staging.rstrip('/')}/local/{uuid.uuid4().hex}")
            paths = dict(zip(paths, local, strict=True))
        by_copy = new_keys(self.spark, self.spec, list(paths.values()),
                           {p: _spark_path(self.spark, p) for p in paths.values()})
        keys = {original: by_copy[copy] for original, copy in paths.items()}
        out = []
        for groups in found:
            regrouped: dict[tuple[Any, ...], tuple[Shape, list[RawFile]]] = {}
            for shape, fs in groups.values():
                for f in fs:
                    extra = keys.get(f.path, ())
                    keyed = replace(shape, json_keys=extra,
                                    columns=tuple((".".join(k), t) for k, t in extra))
                    regrouped.setdefault(keyed.key, (keyed, []))[1].append(f)
            out.append(regrouped)
        return out

    def columns(self, groups: dict[tuple[Any, ...], tuple[Shape, list[RawFile]]]) -> list[str]:
        """Bronze's raw columns: the declared ones, then the others in order of appearance, then the layout's
        extra levels the files do not have."""
        declared = list(self.spec.columns)
        found: list[str] = []
        for shape, _ in groups.values():
            found += [t for _, t in shape.columns if t not in declared and t not in found]
        levels = [snake_case(n) if self.spec.standardizes_names() else n for n in self.spec.source.level_columns]
        found += [n for n in levels if n not in declared and n not in found]
        return declared + found + [RAW_RECORD, READ_ERRORS]

    def present(self, groups: dict[tuple[Any, ...], tuple[Shape, list[RawFile]]]) -> list[str]:
        """The raw columns the files actually have (JSON: the declared ones), and the layout's levels."""
        names = list(self.spec.columns) if format_of(self.spec).keys_per_record else []
        names = list(dict.fromkeys([*names, *(t for shape, _ in groups.values() for _, t in shape.columns)]))
        levels = [snake_case(n) if self.spec.standardizes_names() else n for n in self.spec.source.level_columns]
        return names + [n for n in levels if n not in names]

    def read(self, day: RawDay, run_id: str, ingested_at: dt.datetime, exclude: set[str] | None = None
             ) -> RawRead:
        df, reads = self.read_days([day], {day.date: run_id}, ingested_at, exclude)
        return replace(reads[day.date], df=df)  # None exactly when nothing was scanned

    def read_days(self, days: list[RawDay], run_ids: dict[dt.date, str], ingested_at: dt.datetime,
                  exclude: set[str] | None = None) -> tuple[DataFrame | None, dict[dt.date, RawRead]]:
        """The rows of several days' files in as many scans as there are file shapes, whatever the number of
        days (each row takes its file's run date and run id), and what happened to each day's files (their
        `df` is None: the rows are in the one frame)."""
        groups: dict[tuple[Any, ...], tuple[Shape, list[RawFile]]] = {}
        origin: dict[str, tuple[dt.date, str]] = {}
        reads = {}
        probed = []
        for day in days:
            found, empty, rejected = self.shapes(day)
            if exclude:
                found = {k: (s, [f for f in fs if f.path not in exclude]) for k, (s, fs) in found.items()}
                found = {k: v for k, v in found.items() if v[1]}
            probed.append((day, found, empty, rejected))
        keyed = self.with_json_keys([found for _, found, _, _ in probed])
        for (day, _, empty, rejected), found in zip(probed, keyed, strict=True):
            for key, (shape, files) in found.items():
                groups.setdefault(key, (shape, []))[1].extend(files)
                origin.update({f.path: (day.date, run_ids[day.date]) for f in files})
            read = empty + [f for _, fs in found.values() for f in fs]
            reads[day.date] = RawRead(None, sorted(read, key=lambda f: f.path), rejected, self.present(found),
                                      scanned=bool(found))
        columns = self.columns(groups)
        frames = [self._scan(shape, files, columns, origin, ingested_at) for shape, files in groups.values()]
        return (functools.reduce(DataFrame.unionAll, frames) if frames else None), reads

    def scan_file(self, day: RawDay, f: RawFile, run_id: str, ingested_at: dt.datetime) -> DataFrame | None:
        """One file's rows, read on their own (to find which file of a failed scan cannot be read)."""
        groups, _, _ = self.shapes(RawDay(day.dataset, day.date, day.folder, [f]))
        (groups,) = self.with_json_keys([groups])
        if not groups:
            return None
        (shape, files), = groups.values()
        return self._scan(shape, files, self.columns(groups), {f.path: (day.date, run_id)}, ingested_at)

    def _scan(self, shape: Shape, files: list[RawFile], columns: list[str], origin: dict[str, tuple[dt.date, str]],
              ingested_at: dt.datetime) -> DataFrame:
        """One Spark scan of files of one shape, selected as `columns` plus the lineage columns; `origin` gives
        each file's (run date, run id) by its path."""
        fmt = format_of(self.spec)
        source_file = "_metadata.file_path"
        originals = files
        copies = None
        if shape.convert:
            copies = [self._converted(f) for f in files]
        elif not spark_reads(self.spark, files[0].path):  # no connector for the store: Spark reads local copies
            local = localize([f.path for f in files], f"{self.staging.rstrip('/')}/local/{uuid.uuid4().hex}")
            copies = [replace(f, path=p) for f, p in zip(files, local, strict=True)]
        if copies is not None:
            names = {_spark_path(self.spark, c.path): _spark_path(self.spark, f.path)
                     for c, f in zip(copies, files, strict=True)}
            source_file = _by_file(names)
            files = copies
        df, values = fmt.scan(self.spark, self.spec, [spark_literal(f.path) for f in files], shape)
        level_sql = {}
        for name in self.spec.source.level_columns:
            target = snake_case(name) if self.spec.standardizes_names() else name
            if target in values:
                continue
            by_file = {_spark_path(self.spark, f.path): dict(f.levels)[name] for f in files}
            if len(set(by_file.values())) == 1:
                level_sql[target] = literal(next(iter(by_file.values())))
            else:
                level_sql[target] = _by_file(by_file)
        declared = self.spec.source_schema()
        select = []
        for c in columns:
            if c in values:
                expr = values[c]
            elif c in level_sql:
                expr = level_sql[c]
            elif c == READ_ERRORS:
                expr = NO_READ_ERRORS
            elif c in declared.names:
                wanted = declared[c].dataType if fmt.typed else as_text(declared[c].dataType)
                expr = f"CAST(NULL AS {sql_type(wanted)})"
            else:
                expr = "CAST(NULL AS STRING)"
            if c in declared.names and c in level_sql and fmt.typed:
                expr = f"CAST({expr} AS {sql_type(declared[c].dataType)})"
            select.append(f"{expr} AS {ident(c)}")
        def per_file(value: dict[str, str]) -> str:
            """SQL: the one value, or each row's by its file; a file not found fails the scan (the batch is
            then loaded day by day), so no row can go without its run date"""
            if len(set(value.values())) == 1:
                return literal(next(iter(value.values())))
            return (f"coalesce({_by_file(value)}, raise_error(concat('no run date for the file ', "
                    f"_metadata.file_path)))")

        as_read = {_spark_path(self.spark, f.path): origin[o.path] for f, o in zip(files, originals, strict=True)}
        select += [f"{source_file} AS _source_file",
                   f"CAST({per_file({p: d.isoformat() for p, (d, _) in as_read.items()})} AS DATE) AS _partition_date",
                   f"{per_file({p: r for p, (_, r) in as_read.items()})} AS _run_id",
                   f"CAST({literal(ingested_at.replace(tzinfo=None).isoformat(sep=' '))} AS TIMESTAMP) AS _ingested_at"]
        return df.selectExpr(*select)


def new_columns(spec: DatasetSpec, raw_columns: list[str]) -> list[str]:
    """Columns in the raw data that the spec does not declare (names as the typed cast will see them)."""
    declared = set(spec.columns) | set(TECHNICAL)
    names = [snake_case(c) if spec.standardizes_names() and not c.startswith("_") else c for c in raw_columns]
    return [c for c in names if c not in declared]
