"""Look at each raw file before Spark reads it: can it be read at all, and what shape does it have?

A probe runs in the driver and reads little: a CSV file's header line, a Parquet file's footer, and the whole
stream only of a compressed file (a truncated or corrupt stream is found here, with a cause a person can read,
instead of failing a Spark job that reads many files). The outcome is either a `Shape` (how Spark reads the file:
files of one shape are read together) or a `Rejection` with the cause in one line.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import types as T

from lakehouse.errors import environment_cause
from lakehouse.retry import with_retries
from lakehouse.sources.files import RawFile
from lakehouse.sources.formats import format_of
from lakehouse.specs.models import DatasetSpec
from lakehouse.specs.names import snake_case
from lakehouse.storage import filesystem

GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
PARQUET_MAGIC = b"PAR1"
BOMS = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]
HEADER_LIMIT = 1 << 20  # a header line longer than 1 MiB is not a header
CHUNK = 1 << 20


@dataclass(frozen=True)
class Shape:
    """How Spark reads a file. `columns`: the file's own columns in file order, each (name in the file, name in
    bronze); `types`: for Parquet, the Spark type of each read column; `cast`: for Parquet, declared columns
    whose file type is converted to the spec's type; `empty`: nothing to read (0 bytes); `convert`: a Parquet
    file Spark cannot read as it is (nanosecond timestamps), rewritten for it first; `multiline`: a CSV file with
    a quoted field that holds a line break (read with Spark's multi-line parser); `json_keys`: a JSON file's keys
    the schema does not declare, each (path from the record's root, bronze column) (lakehouse.sources.json_keys)."""

    columns: tuple[tuple[str, str], ...] = ()
    types: tuple[T.DataType, ...] = ()
    empty: bool = False
    convert: bool = False
    multiline: bool = False
    json_keys: tuple[tuple[tuple[str, ...], str], ...] = ()

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.columns, tuple(t.simpleString() for t in self.types), self.convert, self.multiline,
                self.json_keys)


@dataclass(frozen=True)
class Rejection:
    file: RawFile
    reason: str


# ---------------------------------------------------------------- opening

def _open(path: str) -> BinaryIO:
    if "://" in path:
        fs, inner = filesystem(path)
        # the bytes as stored: pyarrow would otherwise decompress by the file's extension on its own
        stream: BinaryIO = fs.open_input_stream(inner, compression=None)
        return stream
    return open(path, "rb")  # noqa: SIM115 (closed by the caller)


def compression_of(path: str) -> str | None:
    name = path.lower()
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith(".bz2"):
        return "bzip2"
    return None


class BadFile(Exception):
    """The file cannot be read; the message is the cause in one line."""


class QuoteScan:
    """Whether a CSV text has a quoted field that holds a line break, fed chunk by chunk (RFC 4180 quoting: a
    doubled quote inside quotes keeps the count even, so a line break is inside quotes exactly when an odd
    number of quotes precede it). `balanced` is False when the text ends inside quotes: an unbalanced quote,
    which no parser can place (the file is then read line by line and its broken rows are quarantined)."""

    def __init__(self, quote: str) -> None:
        self.quote = quote.encode()
        self.inside = False
        self.found = False

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.quote not in chunk:  # no quote: a line break here is inside quotes when the chunk starts there
            self.found = self.found or (self.inside and (b"\n" in chunk or b"\r" in chunk))
            return
        data = np.frombuffer(chunk, np.uint8)
        quotes = np.flatnonzero(data == self.quote[0])
        if not self.found:
            breaks = np.flatnonzero((data == 10) | (data == 13))
            before = np.searchsorted(quotes, breaks) + int(self.inside)  # quotes before each line break
            self.found = bool(np.any(before & 1))
        self.inside = self.inside != bool(len(quotes) & 1)

    @property
    def balanced(self) -> bool:
        return not self.inside

    @property
    def multiline(self) -> bool:
        return self.found and self.balanced


def _check_stream(path: str, codec: str, scan: QuoteScan | None = None) -> None:
    """Decompress the whole stream (nothing kept; `scan` sees it): a truncated or corrupt stream raises
    BadFile."""
    with _open(path) as raw:
        head = raw.read(3)
        magic = GZIP_MAGIC if codec == "gzip" else BZIP2_MAGIC
        if not head.startswith(magic):
            raise BadFile(f"not {codec} data, though the name ends in .{'gz' if codec == 'gzip' else 'bz2'}")
    opener = gzip.open if codec == "gzip" else bz2.open
    try:
        with _open(path) as raw, opener(raw) as stream:
            while chunk := stream.read(CHUNK):
                if scan is not None:
                    scan.feed(chunk)
    except EOFError as exc:
        raise BadFile(f"{codec} stream truncated ({exc})") from exc
    except (OSError, zlib.error, ValueError) as exc:
        raise BadFile(f"corrupt {codec} stream ({exc})") from exc


def _scan_plain(path: str, scan: QuoteScan) -> None:
    with _open(path) as raw:
        while chunk := raw.read(CHUNK):
            scan.feed(chunk)


def _first_bytes(path: str, codec: str | None, limit: int) -> bytes:
    with _open(path) as raw:
        if codec is None:
            return bytes(raw.read(limit))
        opener = gzip.open if codec == "gzip" else bz2.open
        with opener(raw) as stream:
            return stream.read(limit)


def _text_head(f: RawFile, scan: QuoteScan | None = None) -> bytes | None:
    """The first bytes of a text file's content (decompressed); None for an empty file. With `scan`, the whole
    content is fed to it."""
    codec = compression_of(f.path)
    if codec:
        _check_stream(f.path, codec, scan)
    head = _first_bytes(f.path, codec, HEADER_LIMIT)
    if not head:
        return None
    if codec is None and head.startswith(GZIP_MAGIC):
        raise BadFile("gzip-compressed data in a file whose name does not end in .gz")
    if codec is None and head.startswith(PARQUET_MAGIC):
        raise BadFile("a Parquet file, not text")
    if codec is None and scan is not None:
        _scan_plain(f.path, scan)
    return head


def _encoding_problem(head: bytes, encoding: str) -> str | None:
    declared = codecs.lookup(encoding).name
    for bom, name in BOMS:
        if head.startswith(bom):
            if codecs.lookup(name).name != declared and not (name == "utf-8" and declared == "utf-8"):
                return f"the file starts with a {name.upper()} byte-order mark; the source declares {encoding}"
            return None
    if b"\x00" in head.split(b"\n", 1)[0][:4096] and declared.startswith("utf-8"):
        return "NUL bytes in the first line: binary data or UTF-16 text without a byte-order mark"
    return None


# ---------------------------------------------------------------- text formats

def map_columns(spec: DatasetSpec, names: list[str]) -> tuple[tuple[str, str], ...]:
    """(name in the file, name in bronze) for a file's columns: a declared column by its exact name, else by its
    snake_case form (with `standardize_column_names`), else by a case-insensitive match; any other column keeps
    its name (standardized when the dataset standardizes names). Raises BadFile when the columns cannot be mapped
    one to one."""
    declared = list(spec.columns)
    lower: dict[str, list[str]] = {}
    for c in declared:
        lower.setdefault(c.lower(), []).append(c)
    out: list[tuple[str, str]] = []
    for i, raw in enumerate(names):
        name = raw.strip()
        if not name:
            raise BadFile(f"header column {i + 1} has no name")
        if name in spec.columns:
            target = name
        elif spec.standardizes_names() and snake_case(name) in spec.columns:
            target = snake_case(name)
        elif len(lower.get(name.lower(), [])) == 1:
            target = lower[name.lower()][0]
        else:
            target = snake_case(name) if spec.standardizes_names() else name
        out.append((raw, target))
    targets = [t for _, t in out]
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise BadFile(f"header names column {twice[0]!r} more than once")
    if not set(targets) & set(declared):
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise BadFile(f"header ({shown}) names none of the declared columns")
    return tuple(out)


def csv_options(spec: DatasetSpec) -> dict[str, str]:
    """Spark CSV options of the source: RFC 4180 quoting (a doubled quote inside quotes is one quote) unless the
    spec says otherwise, and a header line."""
    options = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in spec.source.options.items()}
    options.setdefault("header", "true")
    quote = options.get("quote", '"')
    options.setdefault("escape", quote)
    return options


def _csv_header(spec: DatasetSpec, head: bytes) -> list[str]:
    options = csv_options(spec)
    encoding = options.get("encoding", options.get("charset", "utf-8"))
    problem = _encoding_problem(head, encoding)
    if problem:
        raise BadFile(problem)
    line = head.split(b"\n", 1)[0]
    if len(line) >= HEADER_LIMIT:
        raise BadFile("no line break in the first 1 MiB: not a CSV header")
    try:
        text = line.decode(encoding)
    except UnicodeDecodeError as exc:
        raise BadFile(f"header is not valid {encoding} text (byte 0x{line[exc.start]:02x} at offset {exc.start})"
                      ) from exc
    text = text.lstrip("\ufeff").rstrip("\r")
    delimiter = options.get("sep", options.get("delimiter", ","))
    delimiter = "\t" if delimiter == "\\t" else delimiter
    if len(delimiter) != 1:
        return text.split(delimiter)
    return next(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=options.get("quote", '"')[:1] or None))


def _quote_scan(spec: DatasetSpec) -> QuoteScan | None:
    """A scan for quoted line breaks, unless the spec sets `multiLine` itself, quoting is off, or quotes are
    escaped by another character than a doubled quote (the count of quotes then says nothing)."""
    options = csv_options(spec)
    quote = options.get("quote", '"')
    if "multiline" in {k.lower() for k in options} or len(quote) != 1 or options.get("escape") != quote:
        return None
    return QuoteScan(quote)


def probe_json(spec: DatasetSpec, f: RawFile) -> Shape:
    """A JSON file: readable text in its encoding (its keys are found by one Spark pass over all the files)."""
    head = _text_head(f, None)
    if head is None:
        return Shape(empty=True)
    problem = _encoding_problem(head, str(spec.source.options.get("encoding", "utf-8")))
    if problem:
        raise BadFile(problem)
    return Shape()


def probe_csv(spec: DatasetSpec, f: RawFile) -> Shape:
    """A delimited text file: its header mapped to the declared columns, and whether a quoted field holds a line
    break."""
    scan = _quote_scan(spec)
    head = _text_head(f, scan)
    if head is None:
        return Shape(empty=True)
    multiline = scan is not None and scan.multiline
    if csv_options(spec).get("header") != "true":
        return Shape(columns=tuple((c, c) for c in spec.columns), multiline=multiline)
    return Shape(columns=map_columns(spec, _csv_header(spec, head)), multiline=multiline)


# ---------------------------------------------------------------- parquet

def _spark_type(t: pa.DataType) -> T.DataType | None:
    """The Spark type a Parquet column of arrow type `t` reads as (None: Spark cannot read it)."""
    if pa.types.is_dictionary(t):
        return _spark_type(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return T.StringType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    for check, spark in ((pa.types.is_int8, T.ByteType()), (pa.types.is_int16, T.ShortType()),
                         (pa.types.is_int32, T.IntegerType()), (pa.types.is_int64, T.LongType()),
                         (pa.types.is_uint8, T.ShortType()), (pa.types.is_uint16, T.IntegerType()),
                         (pa.types.is_uint32, T.LongType()), (pa.types.is_uint64, T.DecimalType(20, 0)),
                         (pa.types.is_float32, T.FloatType()), (pa.types.is_float64, T.DoubleType()),
                         (pa.types.is_date32, T.DateType()), (pa.types.is_binary, T.BinaryType()),
                         (pa.types.is_large_binary, T.BinaryType())):
        if check(t):
            return spark
    if pa.types.is_decimal(t):
        return T.DecimalType(t.precision, t.scale) if t.precision <= 38 else None
    if pa.types.is_timestamp(t):
        return T.TimestampType() if t.tz is not None else T.TimestampNTZType()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _spark_type(t.value_type)
        return None if inner is None else T.ArrayType(inner, True)
    if pa.types.is_map(t):
        k, v = _spark_type(t.key_type), _spark_type(t.item_type)
        return None if k is None or v is None else T.MapType(k, v, True)
    if pa.types.is_struct(t):
        fields = []
        for i in range(t.num_fields):
            ft = _spark_type(t.field(i).type)
            if ft is None:
                return None
            fields.append(T.StructField(t.field(i).name, ft, True))
        return T.StructType(fields)
    return None


def _has_nanos(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t):
        return bool(t.unit == "ns")
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_nanos(t.value_type)
    if pa.types.is_struct(t):
        return any(_has_nanos(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _has_nanos(t.key_type) or _has_nanos(t.item_type)
    return False


NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


def _strip(t: T.DataType) -> T.DataType:
    """The type with every nullable flag set, for comparing shapes."""
    if isinstance(t, T.ArrayType):
        return T.ArrayType(_strip(t.elementType), True)
    if isinstance(t, T.MapType):
        return T.MapType(_strip(t.keyType), _strip(t.valueType), True)
    if isinstance(t, T.StructType):
        return T.StructType([T.StructField(f.name, _strip(f.dataType), True) for f in t.fields])
    if isinstance(t, T.TimestampNTZType):
        return T.TimestampType()
    return t


def reconcilable(found: T.DataType, wanted: T.DataType) -> bool:
    """Whether a file column of type `found` can be converted to the declared type `wanted` value by value (a
    value the conversion would change is then a type_mismatch of its row, not a silent change)."""
    found, wanted = _strip(found), _strip(wanted)
    if found == wanted:
        return True
    if isinstance(wanted, T.StringType):
        return not isinstance(found, T.BinaryType | T.ArrayType | T.MapType | T.StructType)
    if isinstance(found, NUMERIC) and isinstance(wanted, NUMERIC):
        return True
    return isinstance(found, T.DateType | T.TimestampType) and isinstance(wanted, T.DateType | T.TimestampType)


def _describe(t: T.DataType) -> str:
    return "timestamp" if isinstance(t, T.TimestampNTZType) else t.simpleString()


def probe_parquet(spec: DatasetSpec, f: RawFile) -> Shape:
    if f.size == 0:
        raise BadFile("empty file (0 bytes): not a Parquet file")
    try:
        if "://" in f.path:
            fs, inner = filesystem(f.path)
            with fs.open_input_file(inner) as handle:
                schema = pq.ParquetFile(handle).schema_arrow
        else:
            schema = pq.ParquetFile(f.path).schema_arrow  # reads the footer only
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "magic bytes" in text.lower():
            raise BadFile("not a Parquet file (bad magic bytes)") from exc
        raise BadFile(f"unreadable Parquet footer: {text}") from exc
    names = [field.name for field in schema]
    mapping = map_columns(spec, names)
    declared = spec.source_schema()
    types: list[T.DataType] = []
    for field, (_, target) in zip(schema, mapping, strict=True):
        spark_type = _spark_type(field.type)
        if target in declared.names:
            wanted = declared[target].dataType
            if spark_type is None or not reconcilable(spark_type, wanted):
                shown = str(field.type) if spark_type is None else _describe(spark_type)
                raise BadFile(f"column {target}: {shown} in the file, {wanted.simpleString()} in the spec")
        elif spark_type is None:
            raise BadFile(f"column {field.name}: type {field.type} cannot be read")
        types.append(spark_type)
    return Shape(columns=mapping, types=tuple(types), convert=any(_has_nanos(fl.type) for fl in schema))


def probe(spec: DatasetSpec, f: RawFile) -> Shape | Rejection:
    """The file's shape, or why it cannot be read. Only a cause in the file's bytes rejects it: one in the
    environment (permission denied, an I/O error, a connection reset, ...) is tried again (lakehouse.retry), then
    raised as EnvironmentFailure, which fails the dataset and leaves the file to the next run."""

    def attempt() -> Shape | Rejection:
        try:
            shape: Shape = format_of(spec).probe(spec, f)
            return shape
        except BadFile as exc:
            if exc.__cause__ is not None and environment_cause(exc.__cause__):
                raise exc.__cause__ from None
            return Rejection(f, str(exc))
        except (OSError, EOFError) as exc:
            if environment_cause(exc):
                raise
            return Rejection(f, f"cannot be opened: {exc}")

    return with_retries(attempt, f"reading {f.path}")
