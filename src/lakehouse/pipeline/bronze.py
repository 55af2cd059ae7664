"""Raw -> bronze for one dataset and run date, with the file as the unit of failure.

The day's files are probed and read (`sources.reader`); files that cannot be read are rejected with their cause
and the rest is written. A file that passes its probe but fails inside Spark's scan (a corrupt Parquet page, say)
fails the whole write: then each file is scanned on its own, the ones that fail are rejected, and the write is
done again without them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from lakehouse.errors import CommitConflict, EnvironmentFailure, describe, environment_cause
from lakehouse.sources.files import RawDay, RawFile
from lakehouse.sources.probe import Rejection
from lakehouse.sources.reader import DayReader, RawRead
from lakehouse.specs.models import DatasetSpec
from lakehouse.tables.engine import TableEngine

log = logging.getLogger(__name__)


@dataclass
class BronzeLoad:
    """What the bronze stage did with the day's files."""

    read: list[RawFile] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: bool = False  # any readable file


def _unreadable(reader: DayReader, day: RawDay, files: list[RawFile], run_id: str, ingested_at: dt.datetime
                ) -> list[Rejection]:
    """The files whose own scan fails, each with the root cause."""
    bad = []
    for f in files:
        df = reader.scan_file(day, f, run_id, ingested_at)
        if df is None:
            continue
        try:
            df.write.format("noop").mode("overwrite").save()
        except Exception as exc:
            cause = environment_cause(exc)
            if cause:  # not the file's fault: the dataset fails, the file is tried again next run
                raise EnvironmentFailure(f"reading {f.path}", cause) from exc
            bad.append(Rejection(f, f"unreadable: {describe(exc)}"))
    return bad


def load_bronze(engine: TableEngine, spec: DatasetSpec, day: RawDay, run_id: str, ingested_at: dt.datetime,
                staging: str) -> BronzeLoad:
    """Replace the day's bronze partition with the rows of every readable file of `day`."""
    reader = DayReader(engine.spark, spec, staging)
    path = engine.layout.bronze(spec.name)
    raw: RawRead = reader.read(day, run_id, ingested_at)
    rejected = list(raw.rejected)
    for attempt in range(2):
        if raw.df is None:
            break
        try:
            engine.replace_partitions(raw.df, path, ["_partition_date"], {"_partition_date": [day.date]})
            break
        except CommitConflict:
            raise
        except Exception:
            if attempt == 1:
                raise
            bad = _unreadable(reader, day, raw.read, run_id, ingested_at)
            if not bad:
                raise
            log.debug("bronze write of %s failed; unreadable files found", spec.name, exc_info=True)
            rejected += bad
            raw = reader.read(day, run_id, ingested_at, exclude={r.file.path for r in rejected})
            rejected = list(raw.rejected) + bad
    for r in rejected:
        log.warning("dataset %s: rejected %s: %s", spec.name, r.file.path, r.reason)
    return BronzeLoad(raw.read, rejected, raw.columns, raw.df is not None)


def load_bronze_days(engine: TableEngine, spec: DatasetSpec, days: list[RawDay], run_ids: dict[dt.date, str],
                     ingested_at: dt.datetime, staging: str) -> dict[dt.date, BronzeLoad]:
    """Several days' files into their bronze partitions in one commit. A day whose files all fail their probe
    keeps its partition as it is (as `load_bronze` does). When the one write fails (a file that fails only inside
    Spark's scan, days whose columns cannot be unioned), each day is loaded on its own with `load_bronze`, which
    finds and rejects the unreadable files."""
    if len(days) == 1:
        day = days[0]
        return {day.date: load_bronze(engine, spec, day, run_ids[day.date], ingested_at, f"{staging}/{day.date}")}
    union, reads = DayReader(engine.spark, spec, staging).read_days(days, run_ids, ingested_at)
    if union is not None:
        try:
            engine.replace_partitions(union, engine.layout.bronze(spec.name), ["_partition_date"],
                                      {"_partition_date": [d for d, r in reads.items() if r.scanned]})
        except CommitConflict:
            raise
        except Exception:
            log.debug("bronze write of %s for %d days failed; loading day by day", spec.name, len(days),
                      exc_info=True)
            return {day.date: load_bronze(engine, spec, day, run_ids[day.date], ingested_at, f"{staging}/{day.date}")
                    for day in days}
    out = {}
    for date, r in reads.items():
        for rejection in r.rejected:
            log.warning("dataset %s: rejected %s: %s", spec.name, rejection.file.path, rejection.reason)
        out[date] = BronzeLoad(r.read, list(r.rejected), r.columns, r.scanned)
    return out
