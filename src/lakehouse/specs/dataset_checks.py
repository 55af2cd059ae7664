"""Dataset checks: thresholds over the whole batch (row count, completeness, freshness, ...)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    model_validator,
)

from lakehouse.specs.base import Spec, require_a_bound


class DatasetCheckBase(Spec):
    name: str | None = None
    action: Literal["warn", "fail"] = "fail"


class RowCount(DatasetCheckBase):
    check: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class Completeness(DatasetCheckBase):
    check: Literal["completeness"]
    column: str
    min: float = Field(ge=0, le=1)


class Uniqueness(DatasetCheckBase):
    check: Literal["uniqueness"]
    columns: list[str] = Field(min_length=1)
    min: float = Field(ge=0, le=1)


class Freshness(DatasetCheckBase):
    check: Literal["freshness"]
    column: str
    max_age_hours: float = Field(gt=0, description="latest value at most this old, measured at the end of the "
                                                   "run date (UTC)")


class Statistic(DatasetCheckBase):
    check: Literal["statistic"]
    column: str
    stat: Literal["min", "max", "mean", "stddev"]
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        require_a_bound(self, "statistic")
        return self


class RowCountChange(DatasetCheckBase):
    check: Literal["row_count_change"]
    max_change: float = Field(gt=0, description="largest allowed |rows - previous| / previous, previous being "
                                                "the rows read by the latest successful earlier run date")


class RequiredColumns(DatasetCheckBase):
    check: Literal["required_columns"]
    columns: list[str] = Field(min_length=1, description="columns that must be present in the raw data")


DatasetCheck = Annotated[RowCount | Completeness | Uniqueness | Freshness | Statistic | RowCountChange
                         | RequiredColumns, Field(discriminator="check")]
