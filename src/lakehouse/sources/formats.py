"""Raw file formats as a registry: each format one object that knows its file names, how to probe one file and
how to read a group of files of one shape.

    register(RawFormat("tsv", ("*.tsv", "*.tab"), probe=..., scan=...))

makes `format: tsv` valid in a dataset spec (validate-config names the registered formats) and readable by the
daily job. The built-in formats (csv, json, parquet) are registered by `sources.builtin_formats`, which the
package's face imports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from lakehouse.specs import source as source_spec
from lakehouse.specs.models import DatasetSpec


@dataclass(frozen=True)
class RawFormat:
    """One raw file format.

    `patterns`: the names of its data files (case-insensitive globs), used when a spec gives no `files:`; with
    `compressed`, each with `.gz` and `.bz2` too. `probe(spec, file)`: the file's Shape (its columns as named in
    the file and in bronze; an empty file), or `probe.BadFile` with the cause in the file's bytes. `scan(spark,
    spec, paths, shape)`: one Spark read of files of one shape (paths as Spark takes them), and the SQL of each
    bronze column over it (declared columns as text unless `typed`; `_raw_record` for a line that could not be
    parsed; `_read_errors`). `typed`: the files carry column types (declared types are read as they are).
    `keys_per_record`: the columns are each record's keys, found by one Spark pass (JSON)."""

    name: str
    patterns: tuple[str, ...]
    # (spec, sources.files.RawFile) -> sources.probe.Shape; typed loosely here, below the modules that use it
    probe: Callable[[DatasetSpec, Any], Any]
    # (spark, spec, paths, Shape) -> (frame, bronze column -> SQL)
    scan: Callable[[SparkSession, DatasetSpec, list[str], Any], tuple[DataFrame, dict[str, str]]]
    compressed: bool = True
    typed: bool = False
    keys_per_record: bool = False


FORMATS: dict[str, RawFormat] = {}


def register(fmt: RawFormat) -> RawFormat:
    """Make `fmt` a format specs may name; a name registered by another object is refused."""
    held = FORMATS.get(fmt.name)
    if held is not None and held != fmt:
        raise ValueError(f"raw format {fmt.name!r} is registered already")
    FORMATS[fmt.name] = fmt
    source_spec.FORMAT_NAMES.add(fmt.name)
    return fmt


def unregister(name: str) -> None:
    """Take the format `name` out (a test's own format, registered for the test only)."""
    FORMATS.pop(name)
    source_spec.FORMAT_NAMES.discard(name)


def format_of(spec: DatasetSpec) -> RawFormat:
    """The registered format of the dataset's source."""
    return FORMATS[spec.source.format]
