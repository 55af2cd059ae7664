"""Which files of the raw zone are a dataset's data, and which day (and extra partition levels) each belongs to.

A dataset's raw folder holds partition folders described by the source's `layout` (`date={date}`,
`year={yyyy}/month={mm}/day={dd}/hour={hour}`, `region={region}/date={date}`, `*` for any one folder name).
Everything below a matched partition folder belongs to it, at any depth. A file is a data file when its name
matches the source's name patterns (by default per format, compressed variants included); hidden and
`_`-prefixed files and folders are ignored, other files are skipped and reported. A file is listed once, however
many symlinks lead to it, and a folder symlink that leads back up the tree is not followed twice.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import hashlib
import os
import re
from dataclasses import dataclass, field, replace

import pyarrow.fs as pafs

from lakehouse.sources.formats import format_of
from lakehouse.specs.models import DATE_PARTS, DatasetSpec
from lakehouse.storage import filesystem, list_objects
from lakehouse.tables.paths import LakeLayout, arrow_uri, join

COMPRESSED = (".gz", ".bz2")


def name_patterns(spec: DatasetSpec) -> list[str]:
    """The source's data-file name patterns (case-insensitive; text formats with their .gz/.bz2 variants)."""
    if spec.source.files:
        return list(spec.source.files)
    fmt = format_of(spec)
    base = list(fmt.patterns)
    if not fmt.compressed:
        return base
    return base + [p + ext for p in base for ext in COMPRESSED]


@dataclass(frozen=True)
class RawFile:
    path: str
    size: int
    mtime: dt.datetime | None
    # values of the layout's extra levels ({hour}, {region}), in layout order
    levels: tuple[tuple[str, str], ...] = ()
    # the object's ETag on object storage (a content fingerprint); on a local disk the inode and change time
    # (local_fingerprint); None elsewhere
    etag: str | None = None
    # a local file's content digest (content_checksum), taken before its rows are read; None on object storage,
    # where the ETag names the content
    checksum: str | None = None


@dataclass
class RawListing:
    """A dataset's raw files by partition date, and the files that are not data files."""

    days: dict[dt.date, list[RawFile]] = field(default_factory=dict)
    skipped: dict[dt.date | None, list[str]] = field(default_factory=dict)
    # partition folders of the layout's shape whose parts are not a date (date=2025-02-30, month=13): path -> why
    invalid: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RawDay:
    """The files of one dataset's raw partition for one date."""

    dataset: str
    date: dt.date
    folder: str
    files: list[RawFile]
    skipped: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- layout

_PLACEHOLDER = re.compile(r"{(\w+)}|\*")
_DATE_REGEX = {"date": r"\d{4}-\d{2}-\d{2}", "yyyy": r"\d{4}", "mm": r"\d{2}", "dd": r"\d{2}"}


def partition_folder(layout: str, day: dt.date) -> str:
    """The layout with the day's parts filled in (extra levels left as they are)."""
    values = {"date": day.isoformat(), "yyyy": f"{day.year:04d}", "mm": f"{day.month:02d}", "dd": f"{day.day:02d}"}
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), m.group(0)), layout)


def listing_prefix(layout: str, day: dt.date | None) -> str:
    """The deepest folder below the source path that holds all of `day`'s partitions (all days' when None)."""
    cut = len(layout)
    for m in _PLACEHOLDER.finditer(layout):
        if day is None or m.group(0) == "*" or m.group(1) not in DATE_PARTS:
            cut = m.start()
            break
    fixed = partition_folder(layout[:cut], day) if day is not None else layout[:cut]
    return fixed if cut == len(layout) else fixed.rsplit("/", 1)[0] if "/" in fixed else ""


def partition_pattern(layout: str, loose: bool = False) -> re.Pattern[str]:
    """A regex matching a partition folder of `layout` at the start of a relative path, capturing its parts;
    `loose`: any folder name where a date part stands (to find folders that look like partitions but hold no
    date)."""
    pattern, last = "", 0
    for m in _PLACEHOLDER.finditer(layout):
        pattern += re.escape(layout[last:m.start()])
        name = m.group(1)
        if name is None:
            pattern += r"[^/]+"
        elif name in _DATE_REGEX:
            pattern += f"(?P<{name}>{'[^/]+' if loose else _DATE_REGEX[name]})"
        else:
            pattern += f"(?P<level_{name}>[^/]+)"
        last = m.end()
    return re.compile("^" + pattern + re.escape(layout[last:]) + "/")


def _date_of(match: re.Match[str]) -> dt.date | None:
    g = match.groupdict()
    try:
        if g.get("date"):
            return dt.date.fromisoformat(g["date"])
        return dt.date(int(g["yyyy"]), int(g["mm"]), int(g["dd"]))
    except ValueError:
        return None


# ---------------------------------------------------------------- listing

def _is_hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _walk_local(base: str) -> list[tuple[str, os.stat_result]]:
    """Every regular file below `base` (symlinks followed) as (path, stat), each file once: a file reached by
    several paths (symlinks) keeps its first path in sorted order; a folder already visited is not entered
    again, so symlink loops end."""
    found: dict[tuple[int, int], tuple[str, os.stat_result]] = {}
    seen_dirs: set[tuple[int, int]] = set()

    def visit(folder: str) -> None:
        try:
            st = os.stat(folder)
        except OSError:
            return
        if (st.st_dev, st.st_ino) in seen_dirs:
            return
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            try:
                target = os.stat(entry.path)  # follows symlinks
            except OSError:
                continue  # a broken symlink: nothing to read
            if os.path.isdir(entry.path):
                visit(entry.path)
            elif os.path.isfile(entry.path):
                found.setdefault((target.st_dev, target.st_ino), (entry.path, target))

    visit(base)
    return sorted(found.values(), key=lambda item: item[0])


Found = tuple[str, int, dt.datetime | None, str | None]  # relative path, size, modification time, ETag


def local_fingerprint(st: os.stat_result) -> str:
    """A local file's change fingerprint, kept where S3 keeps the ETag: its inode and change time (ctime). Any
    write moves the ctime, also one that keeps the size and sets the modification time back (a re-export, a copy
    with `cp -p` or rsync -t), and no tool can set it; a rename or chmod moves it too (the file is then read
    again, and a reload of the same rows changes no table)."""
    return f"ino{st.st_ino}-ctime{st.st_ctime_ns}"


def is_local(path: str) -> bool:
    return "://" not in path


@functools.lru_cache(maxsize=65536)
def _digest(path: str, size: int, fingerprint: str | None) -> str:
    """The digest of the file at `path` as it is with `size` and `fingerprint` (one read per state of a file in a
    process: the cache key moves with every write)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def content_checksum(f: RawFile) -> str | None:
    """A local file's content digest (BLAKE2b, 128 bits), or None where the store names content by ETag or the file
    cannot be read now (then nothing is confirmed unchanged by it)."""
    if f.checksum is not None:
        return f.checksum
    if not is_local(f.path):
        return None
    try:
        return _digest(f.path, f.size, f.etag)
    except OSError:
        return None


def with_checksum(f: RawFile) -> RawFile:
    """`f` with its content digest, taken before its rows are read: a write after this moment makes the recorded
    digest differ from the file, so the next run reads it again (never the other way round)."""
    return f if f.checksum is not None or not is_local(f.path) else replace(f, checksum=content_checksum(f))


def _walk(root: str) -> list[Found]:
    """(path relative to root, size, modification time, ETag) of every non-hidden file below `root`. On S3 the
    listing is paged through boto3, which also gives each object's ETag."""
    if is_local(root):
        base = os.path.abspath(root)
        if not os.path.isdir(base):
            return []
        return [(os.path.relpath(path, base).replace(os.sep, "/"), st.st_size,
                 dt.datetime.fromtimestamp(st.st_mtime, dt.UTC), local_fingerprint(st))
                for path, st in _walk_local(base)]
    out: list[Found] = []
    if arrow_uri(root).startswith("s3://"):
        for obj in list_objects(root):
            if not any(_is_hidden(p) for p in obj.key.split("/")):
                out.append((obj.key, obj.size, obj.modified, obj.etag))
        return sorted(out)
    fs, base = filesystem(root)
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    prefix = base.rstrip("/") + "/"
    for entry in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        relative = entry.path[len(prefix):]
        if entry.type != pafs.FileType.File or any(_is_hidden(p) for p in relative.split("/")):
            continue
        out.append((relative, entry.size or 0, entry.mtime, None))
    return sorted(out)


def list_raw(spec: DatasetSpec, lake: LakeLayout, day: dt.date | None = None) -> RawListing:
    """The dataset's raw files by partition date (only `day`'s partitions when given)."""
    root = lake.raw(spec.source.path)
    root = root if "://" in root else os.path.abspath(root)
    layout = spec.source.layout
    prefix = listing_prefix(layout, day)
    start = join(root, prefix) if prefix else root
    pattern, loose = partition_pattern(layout), partition_pattern(layout, loose=True)
    patterns = [p.lower() for p in name_patterns(spec)]
    levels = spec.source.level_columns
    listing = RawListing()
    for relative, size, mtime, etag in _walk(start):
        relative = f"{prefix}/{relative}" if prefix else relative
        full = join(root, relative)
        match = pattern.match(relative)
        date = _date_of(match) if match else None
        if match is None or date is None:
            shaped = match or loose.match(relative)
            if shaped:
                # the layout's shape, but its date parts are not a date: named, its files are not read
                folder = join(root, shaped.group(0).rstrip("/"))
                listing.invalid.setdefault(folder, "not a date: " + ", ".join(
                    f"{k}={v}" for k, v in shaped.groupdict().items() if k in _DATE_REGEX))
                continue
            listing.skipped.setdefault(day, []).append(full)  # not in any partition folder of the layout
            continue
        if day is not None and date != day:
            continue
        name = relative.rsplit("/", 1)[-1].lower()
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            listing.skipped.setdefault(date, []).append(full)
            continue
        values = tuple((n, match.group(f"level_{n}")) for n in levels)
        listing.days.setdefault(date, []).append(RawFile(full, size, mtime, values, etag))
    listing.days = {d: sorted(files, key=lambda f: f.path) for d, files in sorted(listing.days.items())}
    return listing


def discover(spec: DatasetSpec, lake: LakeLayout, day: dt.date) -> RawDay:
    """The data files of `spec`'s raw partition(s) for `day`, and the other files found there."""
    listing = list_raw(spec, lake, day)
    folder = join(lake.raw(spec.source.path), partition_folder(spec.source.layout, day))
    return RawDay(spec.name, day, folder, listing.days.get(day, []), sorted(listing.skipped.get(day, [])))
