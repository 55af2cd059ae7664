"""Read a day's (or a batch of days') raw files of a dataset, as received, with lineage columns; each file on its
own terms.

Every file is probed first (`probe.py`): a file that cannot be read is set aside whole with its cause, the others
are read. Files of one shape (a CSV header, a Parquet schema) are read by one Spark scan, so a day of many files
is not many Spark jobs, and the scans are lined up on one set of bronze columns:

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
from pyspark.sql import types as T

from lakehouse.sources.files import RawDay, RawFile
from lakehouse.sources.formats import format_of
from lakehouse.sources.json_keys import new_keys
from lakehouse.sources.probe import Rejection, Shape, csv_options, probe
from lakehouse.specs.models import DatasetSpec
from lakehouse.specs.names import snake_case
from lakehouse.sql import ident, literal, sql_type
from lakehouse.storage import filesystem, localize, spark_literal, spark_reads, spark_uri

RAW_RECORD = "_raw_record"
READ_ERRORS = "_read_errors"
LINEAGE = ["_source_file", "_partition_date", "_run_id", "_ingested_at"]
TECHNICAL = [RAW_RECORD, READ_ERRORS, *LINEAGE]
READ_ERROR_TYPE = T.ArrayType(T.StructType([T.StructField("column", T.StringType()),
                                            T.StructField("message", T.StringType())]))
NO_READ_ERRORS = f"CAST(array() AS {sql_type(READ_ERROR_TYPE)})"
# the value a read error's message quotes (`value <v> is a JSON object or array...`, `value <v> (<type> in the
# file) is not a valid <type>`: the messages _json and _parquet write), for a rescued value
_QUOTED_VALUE = r"(?s)^value (.*) (is a JSON object or array.*|\(.+ in the file\) is not a valid .+)$"


def read_error_value(error: str) -> str:
    """SQL: the value a read error (`error`, an element of `_read_errors`) is about, as read."""
    return f"regexp_extract({error}.message, {literal(_QUOTED_VALUE)}, 1)"


@dataclass
class RawRead:
    """A day's raw rows (None when no file could be read) and what happened to each file."""

    df: DataFrame | None
    read: list[RawFile] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # raw columns the files have (declared ones may be absent)
    scanned: bool = False  # some file of rows was read (not only empty or rejected files)


def _with_leaves(dtype: T.DataType, leaf: T.DataType) -> T.DataType:
    """The same shape (structs, arrays, map values) with every leaf of type `leaf`."""
    if isinstance(dtype, T.StructType):
        return T.StructType([T.StructField(f.name, _with_leaves(f.dataType, leaf), True) for f in dtype.fields])
    if isinstance(dtype, T.ArrayType):
        return T.ArrayType(_with_leaves(dtype.elementType, leaf), True)
    if isinstance(dtype, T.MapType):
        return T.MapType(T.StringType(), _with_leaves(dtype.valueType, leaf), True)
    return leaf


def _as_text(dtype: T.DataType) -> T.DataType:
    """Every leaf a string: what a text format is read as before the typed cast."""
    return _with_leaves(dtype, T.StringType())


def _as_variant(dtype: T.DataType) -> T.DataType:
    """Every leaf a variant: the JSON reader then tells an object from a string."""
    return _with_leaves(dtype, T.VariantType())


def _nested_value(expr: str) -> str:
    return f"left(schema_of_variant({expr}), 1) IN ('O', 'A')"


def _variant_to_text(expr: str, dtype: T.DataType, depth: int = 0) -> tuple[str, str]:
    """SQL (text value, misplaced-object condition) of a variant-leaved value of declared type `dtype`."""
    if isinstance(dtype, T.StructType):
        parts, bad = [], []
        for f in dtype.fields:
            value, wrong = _variant_to_text(f"{expr}.{ident(f.name)}", f.dataType, depth)
            parts.append(f"{literal(f.name)}, {value}")
            bad.append(wrong)
        return (f"CASE WHEN {expr} IS NULL THEN NULL ELSE named_struct({', '.join(parts)}) END",
                " OR ".join(f"coalesce({b}, false)" for b in bad))
    if isinstance(dtype, T.ArrayType | T.MapType):
        var = f"e{depth}"
        inner = dtype.elementType if isinstance(dtype, T.ArrayType) else dtype.valueType
        value, wrong = _variant_to_text(var, inner, depth + 1)
        if isinstance(dtype, T.ArrayType):
            return f"transform({expr}, {var} -> {value})", f"exists({expr}, {var} -> coalesce({wrong}, false))"
        return (f"transform_values({expr}, (k{depth}, {var}) -> {value})",
                f"exists(map_values({expr}), {var} -> coalesce({wrong}, false))")
    return f"CASE WHEN {_nested_value(expr)} THEN NULL ELSE CAST({expr} AS STRING) END", _nested_value(expr)


def _with_field(struct: T.StructType, path: tuple[str, ...]) -> T.StructType:
    """`struct` with a variant field at `path` (the structs on the way exist)."""
    head, rest = path[0], path[1:]
    if not rest:
        return T.StructType([*struct.fields, T.StructField(head, T.VariantType(), True)])
    return T.StructType([T.StructField(f.name, _with_field(f.dataType, rest), True)
                         if f.name == head and isinstance(f.dataType, T.StructType) else f for f in struct.fields])


def _by_file(values: dict[str, str]) -> str:
    """SQL: the value for the row's file, looked up by the path Spark reads it from."""
    pairs = ", ".join(f"{literal(k)}, {literal(v)}" for k, v in values.items())
    return f"element_at(map({pairs}), _metadata.file_path)"


def _spark_path(spark: SparkSession, path: str) -> str:
    """A file's path as Spark's `_metadata.file_path` shows it."""
    jvm: Any = spark._jvm
    uri = str(jvm.org.apache.hadoop.fs.Path(spark_uri(path)).toUri().toString())
    return uri if "://" in spark_uri(path) else "file:" + uri


def scan_csv(spark: SparkSession, spec: DatasetSpec, paths: list[str], shape: Shape
             ) -> tuple[DataFrame, dict[str, str]]:
    """Delimited text: every column read as text by its position in the header; an unparsable line kept whole."""
    options = csv_options(spec)
    options.update({"enforceSchema": "true", "mode": "PERMISSIVE", "columnNameOfCorruptRecord": RAW_RECORD})
    if shape.multiline:
        options["multiLine"] = "true"
    schema = T.StructType([T.StructField(f"_c{i}", T.StringType(), True) for i in range(len(shape.columns))]
                          + [T.StructField(RAW_RECORD, T.StringType(), True)])
    df = spark.read.options(**options).schema(schema).csv(paths)
    values = {target: f"_c{i}" for i, (_, target) in enumerate(shape.columns)}
    values[RAW_RECORD] = ident(RAW_RECORD)
    values[READ_ERRORS] = NO_READ_ERRORS
    return df, values

def scan_json(spark: SparkSession, spec: DatasetSpec, paths: list[str], shape: Shape
              ) -> tuple[DataFrame, dict[str, str]]:
    """JSON lines: declared fields read as variants and shown as text (an object where a scalar is declared is a
    read error of the row), undeclared keys (the shape's) as JSON text."""
    declared = spec.source_schema()
    options = {str(k): str(v).lower() if isinstance(v, bool) else str(v)
               for k, v in spec.source.options.items()}
    read = T.StructType([T.StructField(f.name, _as_variant(f.dataType), True) for f in declared.fields])
    for path, _ in shape.json_keys:
        read = _with_field(read, path)
    schema = T.StructType([*read.fields, T.StructField(RAW_RECORD, T.StringType(), True)])
    df = (spark.read.options(**options).schema(schema).option("mode", "PERMISSIVE")
          .option("columnNameOfCorruptRecord", RAW_RECORD).json(paths))
    values, errors = {}, []
    for f in declared.fields:
        value, wrong = _variant_to_text(ident(f.name), f.dataType)
        values[f.name] = value
        what = "a JSON object or array" if isinstance(f.dataType, T.AtomicType) else \
            "a JSON object or array where a scalar is declared"
        errors.append(f"CASE WHEN {wrong} THEN array(named_struct('column', {literal(f.name)}, 'message', "
                      f"concat('value ', CAST({ident(f.name)} AS STRING), {literal(' is ' + what)}))) "
                      f"ELSE array() END")
    for path, target in shape.json_keys:
        value = ".".join(ident(p) for p in path)
        values[target] = f"CASE WHEN {_nested_value(value)} THEN to_json({value}) ELSE CAST({value} AS STRING) END"
    values[RAW_RECORD] = ident(RAW_RECORD)
    values[READ_ERRORS] = f"CAST(concat({', '.join(errors)}) AS {sql_type(READ_ERROR_TYPE)})" if errors \
        else NO_READ_ERRORS
    return df, values

def scan_parquet(spark: SparkSession, spec: DatasetSpec, paths: list[str], shape: Shape
                 ) -> tuple[DataFrame, dict[str, str]]:
    """Parquet: columns read with the types the probe found, converted to the declared types where a value
    survives the conversion unchanged (otherwise a read error of the row)."""
    declared = spec.source_schema()
    schema = T.StructType([T.StructField(name, t, True) for (name, _), t in zip(shape.columns, shape.types,
                                                                                strict=True)])
    df = spark.read.schema(schema).parquet(*paths)
    values, errors = {}, []
    for (name, target), found in zip(shape.columns, shape.types, strict=True):
        col = ident(name)
        if target not in declared.names:
            nested = isinstance(found, T.StructType | T.ArrayType | T.MapType)
            values[target] = f"to_json({col})" if nested else f"CAST({col} AS STRING)"
            continue
        wanted = declared[target].dataType
        if found == wanted:
            values[target] = col
            continue
        cast = f"CAST({col} AS {sql_type(wanted)})"
        if isinstance(found, T.AtomicType) and not isinstance(wanted, T.StringType):
            # a value that does not survive the conversion unchanged is a type mismatch, not a silent change
            changed = f"{col} IS NOT NULL AND ({cast} IS NULL OR CAST({cast} AS {sql_type(found)}) <> {col})"
            values[target] = f"CASE WHEN {changed} THEN NULL ELSE {cast} END"
            message = (f"concat('value ', CAST({col} AS STRING), "
                       f"{literal(f' ({found.simpleString()} in the file) is not a valid {wanted.simpleString()}')})")
            errors.append(f"CASE WHEN {changed} THEN array(named_struct('column', {literal(target)}, "
                          f"'message', {message})) ELSE array() END")
        else:
            values[target] = cast
    values[READ_ERRORS] = f"CAST(concat({', '.join(errors)}) AS {sql_type(READ_ERROR_TYPE)})" if errors \
        else NO_READ_ERRORS
    return df, values


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
                wanted = declared[c].dataType if fmt.typed else _as_text(declared[c].dataType)
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
