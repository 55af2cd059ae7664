"""Look at each raw file before Spark reads it: can it be read at all, and what shape does it have?

A probe runs in the driver and reads little: a CSV file's header line, a Parquet file's footer, and the whole
stream only of a compressed file (a truncated or corrupt stream is found here, with a cause a person can read,
instead of failing a Spark job that reads many files). The outcome is either a `Shape` (how Spark reads the file:
files of one shape are read together) or a `Rejection` with the cause in one line.
The Parquet probe, with its type mapping, is in `parquet_probe.py`.
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
