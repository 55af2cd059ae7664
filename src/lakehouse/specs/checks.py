"""Row checks: one rule per row (and column), failing rows quarantined (error) or flagged (warn)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from lakehouse.specs.base import IDENT, ColumnType, Spec, require_a_bound


class RowCheckBase(Spec):
    name: str | None = None
    criticality: Literal["error", "warn"] = "error"
    filter: str | None = Field(default=None, description="SQL condition: the check applies only where it holds")
    message: str | None = None


class OneOrMoreColumns(RowCheckBase):
    column: str | None = None
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if bool(self.column) == bool(self.columns):
            raise ValueError("give exactly one of 'column' or 'columns'")
        return self

    @property
    def targets(self) -> list[str]:
        return [self.column] if self.column else list(self.columns or [])


class NotNull(OneOrMoreColumns):
    check: Literal["not_null"]


class NotEmpty(OneOrMoreColumns):
    check: Literal["not_empty"]


class Range(OneOrMoreColumns):
    check: Literal["range", "between"]
    min: float | int | str | None = None
    max: float | int | str | None = None
    inclusive: bool = True

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        require_a_bound(self, "range")
        return self


class InSet(OneOrMoreColumns):
    check: Literal["in_set", "not_in_set"]
    values: list[Any] = Field(min_length=1)


class Regex(OneOrMoreColumns):
    check: Literal["regex"]
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return v


class Email(OneOrMoreColumns):
    check: Literal["email"]


class Phone(OneOrMoreColumns):
    check: Literal["phone"]


class Length(OneOrMoreColumns):
    check: Literal["length"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class ExistsIn(OneOrMoreColumns):
    check: Literal["exists_in"]
    ref: str = Field(description="'<dataset>.<column>' (that dataset's silver table) or 'batch.<column>' (this "
                                 "run's rows of the dataset being checked)")

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        parts = v.removeprefix("silver.").split(".")
        if len(parts) != 2 or not all(re.match(IDENT, p) for p in parts):
            raise ValueError("ref must look like '<dataset>.<column>' (e.g. 'products.product_id') or "
                             "'batch.<column>'")
        return v

    @property
    def in_batch_only(self) -> bool:
        return self.ref.split(".")[0] == "batch"

    @property
    def ref_dataset(self) -> str | None:
        """The dataset whose silver table is looked up; None for 'batch.<column>'."""
        return None if self.in_batch_only else self.ref.removeprefix("silver.").split(".")[0]

    @property
    def ref_column(self) -> str:
        return self.ref.removeprefix("silver.").split(".")[1]


class NotInFuture(OneOrMoreColumns):
    check: Literal["not_in_future"]
    tolerance_hours: float = 0


class NotOlderThan(OneOrMoreColumns):
    check: Literal["not_older_than"]
    days: float = Field(gt=0)


class Unique(RowCheckBase):
    check: Literal["unique"]
    columns: list[str] = Field(min_length=1, description="the combination that must be unique in the batch")


class Parseable(OneOrMoreColumns):
    check: Literal["parseable"]
    type: Literal["date", "timestamp"] = "timestamp"
    formats: list[str] = Field(min_length=1, description="Spark datetime patterns, tried in order")


class Castable(OneOrMoreColumns):
    check: Literal["castable"]
    type: ColumnType


class Compare(RowCheckBase):
    check: Literal["compare"]
    left: str
    op: Literal["<", "<=", ">", ">=", "=", "!="]
    right: str


class Expression(RowCheckBase):
    check: Literal["expression", "sql"]
    expression: str = Field(description="SQL boolean condition that valid rows satisfy")


RowCheck = Annotated[
    NotNull | NotEmpty | Range | InSet | Regex | Email | Phone | Length | ExistsIn | NotInFuture | NotOlderThan
    | Unique | Parseable | Castable | Compare | Expression,
    Field(discriminator="check"),
]
