"""What a run did, as plain data: per dataset and run date (counts, merge result, quality metrics, files,
timings), per gold table, per run date. The pipeline fills them in; the report, the run records and telemetry
read them. Below both: nothing here imports the pipeline.

What loading one dataset for one run date did:

Row accounting holds for every outcome:
    rows_read = rows_to_silver + rows_quarantined + rows_duplicate + rows_held_back
where rows_held_back are valid rows not merged because the dataset failed (a dataset check with action fail,
new columns under `on_new_columns: fail`, a rejected file under `on_bad_file: fail`, or an error).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lakehouse.tables.engine import MergeResult


@dataclass
class QualityMetric:
    check: str
    column: str | None
    criticality: str
    evaluated_rows: int
    failed_rows: int
    observed: float | None = None
    threshold: str | None = None
    status: str = "pass"


@dataclass
class DatasetOutcome:
    dataset: str
    run_date: dt.date
    status: str = "ok"  # ok | no_data | failed
    message: str = ""
    files: int = 0
    rows_read: int = 0
    rows_malformed: int = 0
    rows_quarantined: int = 0
    rows_warned: int = 0
    rows_duplicate: int = 0
    rows_held_back: int = 0
    rows_to_silver: int = 0
    merge: MergeResult | None = None
    new_columns: list[str] = field(default_factory=list)
    affected_dates: dict[str, list[dt.date]] = field(default_factory=dict)
    quality: list[QualityMetric] = field(default_factory=list)
    raw_files: list[Any] = field(default_factory=list)  # files read
    rejected: list[Any] = field(default_factory=list)  # Rejection of each file that could not be read
    skipped: list[str] = field(default_factory=list)  # files in the partition that are not data files
    bronze_reused: bool = False
    unchanged_since: str | None = None  # the run whose load this one would repeat exactly (nothing was redone)
    raw_columns: list[str] = field(default_factory=list)
    # wall-clock seconds per stage (bronze, check, measure, quarantine, silver), for the run log and the bench
    timings: dict[str, float] = field(default_factory=dict)
    failed_stage: str | None = None  # the timed step that raised, when one did

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.failed_stage = self.failed_stage or stage
            raise
        finally:
            self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - start, 3)

    def accounted(self) -> bool:
        return self.rows_read == (self.rows_to_silver + self.rows_quarantined + self.rows_duplicate
                                  + self.rows_held_back)


@dataclass
class GoldOutcome:
    table: str
    run_date: dt.date
    status: str = "ok"
    message: str = ""
    dates: list[dt.date] = field(default_factory=list)
    rows: int = 0
    merge: MergeResult | None = None
    seconds: float = 0.0


@dataclass
class DayResult:
    run_id: str
    run_date: dt.date
    datasets: list[DatasetOutcome] = field(default_factory=list)
    golds: list[GoldOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # dataset -> raw partition folders whose parts are not a date -> why (a pending run's whole listing finds them)
    invalid_folders: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.datasets) or any(g.status == "failed" for g in self.golds)
