"""Read one day's raw partition of a dataset, as received, with lineage columns.

CSV and JSON are read as text (every leaf a string) so that nothing is lost before the typed cast: a value
that does not fit its type becomes a quarantine reason, not a silent null. Lines the parser cannot split are
kept whole in `_raw_record` and quarantined as `malformed_record`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

import pyarrow.fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.specs.models import DatasetSpec
from lakehouse.specs.names import snake_case
from lakehouse.tables.paths import LakeLayout, arrow_uri, join, spark_uri

RAW_RECORD = "_raw_record"
LINEAGE = ["_source_file", "_partition_date", "_run_id", "_ingested_at"]
TECHNICAL = [RAW_RECORD, *LINEAGE]


@dataclass(frozen=True)
class RawFile:
    path: str
    size: int
    mtime: dt.datetime | None


@dataclass(frozen=True)
class RawDay:
    """The files of one dataset's raw partition for one date."""

    dataset: str
    date: dt.date
    folder: str
    files: list[RawFile]


def partition_folder(layout: str, day: dt.date) -> str:
    return layout.format(date=day.isoformat(), yyyy=f"{day.year:04d}", mm=f"{day.month:02d}",
                         dd=f"{day.day:02d}")


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        return pafs.FileSystem.from_uri(arrow_uri(path))
    return pafs.LocalFileSystem(), os.path.abspath(path)


def partition_pattern(layout: str) -> re.Pattern:
    """A regex matching one day's partition folder of `layout`, capturing its date parts."""
    parts = {"date": r"(?P<date>\d{4}-\d{2}-\d{2})", "yyyy": r"(?P<yyyy>\d{4})", "mm": r"(?P<mm>\d{2})",
             "dd": r"(?P<dd>\d{2})"}
    pattern, last = "", 0
    for m in re.finditer(r"{(\w+)}", layout):
        pattern += re.escape(layout[last:m.start()]) + parts[m.group(1)]
        last = m.end()
    return re.compile("^" + pattern + re.escape(layout[last:]) + "/")


def _date_of(match: re.Match) -> dt.date | None:
    g = match.groupdict()
    try:
        if g.get("date"):
            return dt.date.fromisoformat(g["date"])
        return dt.date(int(g["yyyy"]), int(g["mm"]), int(g["dd"]))
    except ValueError:
        return None


def list_partitions(spec: DatasetSpec, lake: LakeLayout) -> dict[dt.date, list[RawFile]]:
    """Every raw partition of the dataset with its data files (one listing of the source folder)."""
    root = lake.raw(spec.source.path)
    fs, base = _filesystem(root)
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return {}
    pattern = partition_pattern(spec.source.layout)
    out: dict[dt.date, list[RawFile]] = {}
    scheme = arrow_uri(root).split("://")[0] + "://" if "://" in root else ""
    for entry in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        if entry.type != pafs.FileType.File or entry.base_name.startswith((".", "_")):
            continue
        relative = entry.path[len(base.rstrip("/")) + 1:]
        match = pattern.match(relative)
        day = _date_of(match) if match else None
        if day is not None:
            out.setdefault(day, []).append(RawFile(scheme + entry.path, entry.size or 0, entry.mtime))
    return {d: sorted(files, key=lambda f: f.path) for d, files in sorted(out.items())}


def discover(spec: DatasetSpec, lake: LakeLayout, day: dt.date) -> RawDay:
    """List the data files of `spec`'s raw partition for `day` (hidden and `_`-prefixed files skipped)."""
    folder = join(lake.raw(spec.source.path), partition_folder(spec.source.layout, day))
    fs, base = _filesystem(folder)
    info = fs.get_file_info(base)
    files: list[RawFile] = []
    if info.type == pafs.FileType.Directory:
        for entry in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
            name = entry.base_name
            if entry.type != pafs.FileType.File or name.startswith((".", "_")):
                continue
            full = entry.path if "://" not in folder else arrow_uri(folder).split("://")[0] + "://" + entry.path
            files.append(RawFile(full, entry.size or 0, entry.mtime))
    files.sort(key=lambda f: f.path)
    return RawDay(spec.name, day, folder, files)


def _as_text(dtype: T.DataType) -> T.DataType:
    """The same shape with every leaf a string (what a text format is read as before the typed cast)."""
    if isinstance(dtype, T.StructType):
        return T.StructType([T.StructField(f.name, _as_text(f.dataType), True) for f in dtype.fields])
    if isinstance(dtype, T.ArrayType):
        return T.ArrayType(_as_text(dtype.elementType), True)
    if isinstance(dtype, T.MapType):
        return T.MapType(T.StringType(), _as_text(dtype.valueType), True)
    return T.StringType()


def _csv_header(spark: SparkSession, paths: list[str], options: dict) -> list[str]:
    return spark.read.options(**options).option("inferSchema", False).csv(paths).columns


def read_raw(spark: SparkSession, spec: DatasetSpec, day: RawDay, run_id: str, ingested_at: dt.datetime
             ) -> DataFrame:
    """The day's rows as received plus `_raw_record` (text formats) and lineage columns."""
    paths = [spark_uri(f.path) for f in day.files]
    fmt = spec.source.format
    options = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in spec.source.options.items()}
    if fmt == "csv":
        options.setdefault("header", "true")
        header = _csv_header(spark, paths, options)
        schema = T.StructType([T.StructField(c, T.StringType(), True) for c in header]
                              + [T.StructField(RAW_RECORD, T.StringType(), True)])
        df = (spark.read.options(**options).schema(schema).option("mode", "PERMISSIVE")
              .option("enforceSchema", "false").option("columnNameOfCorruptRecord", RAW_RECORD).csv(paths))
    elif fmt == "json":
        text = _as_text(spec.source_schema())
        schema = T.StructType(list(text.fields) + [T.StructField(RAW_RECORD, T.StringType(), True)])
        df = (spark.read.options(**options).schema(schema).option("mode", "PERMISSIVE")
              .option("columnNameOfCorruptRecord", RAW_RECORD).json(paths))
    else:
        df = spark.read.options(**options).option("mergeSchema", "true").parquet(*paths)
        df = df.withColumn(RAW_RECORD, F.lit(None).cast("string"))
    return df.select(
        *[F.col(f"`{c}`") for c in df.columns],
        F.col("_metadata.file_path").alias("_source_file"),
        F.lit(day.date).cast("date").alias("_partition_date"),
        F.lit(run_id).alias("_run_id"),
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
    )


def new_columns(spec: DatasetSpec, raw_columns: list[str]) -> list[str]:
    """Columns in the raw data that the spec does not declare (names as the typed cast will see them)."""
    declared = set(spec.columns) | set(TECHNICAL)
    names = [snake_case(c) if spec.standardizes_names() and not c.startswith("_") else c for c in raw_columns]
    return [c for c in names if c not in declared]
