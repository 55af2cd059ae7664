"""Rule tests of a dataset spec (`tests:`): given input rows, the silver rows and the quarantine reasons expected.
Run by `lakehouse test-specs` (pipeline.spec_tests) on a local Spark session, without a lake."""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

from pydantic import Field, model_validator

from lakehouse.specs.base import Spec


class Quarantined(Spec):
    row: int = Field(ge=1, description="the input row, counted from 1")
    reasons: list[str] = Field(min_length=1, description="each a check's name or its message")


class RuleTest(Spec):
    """One case: `rows` go through the dataset's typed cast, cleaning and row checks as a day's raw rows would
    (values as text, as a CSV file gives them; any YAML scalar is taken as its text); the valid rows are then
    deduplicated by key as for a MERGE into an empty silver table."""

    name: str = Field(min_length=1)
    run_date: dt.date = Field(default=dt.date(2024, 1, 1), description="the run date the rows are loaded for")
    now: dt.datetime | None = Field(default=None, description="the instant time-relative checks compare with "
                                                              "(default: the end of the run date)")
    rows: list[dict[str, Any]] = Field(min_length=1)
    references: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="dataset -> its silver rows, for exists_in checks that look there")
    silver: list[dict[str, Any]] | None = Field(
        default=None, description="the rows expected in silver, in any order; only the columns written compared")
    quarantine: list[Quarantined] | None = Field(
        default=None, description="the rows expected in quarantine, each with all its reasons; [] for none")

    @model_validator(mode="after")
    def _rows_exist(self) -> Self:
        if self.silver is None and self.quarantine is None:
            raise ValueError("a test expects something: give 'silver', 'quarantine' or both")
        beyond = [q.row for q in self.quarantine or [] if q.row > len(self.rows)]
        if beyond:
            raise ValueError(f"quarantine names row {beyond[0]}, but the test has {len(self.rows)} row(s)")
        return self

    def instant(self) -> dt.datetime:
        return self.now or dt.datetime.combine(self.run_date + dt.timedelta(days=1), dt.time())
