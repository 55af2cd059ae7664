"""An aggregation spec: a gold table computed from one silver dataset (joins, filter, group, measures)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from lakehouse.specs.base import IDENT, Located, Spec


class Join(Spec):
    dataset: str = Field(alias="table")
    on: list[str] = Field(min_length=1)
    how: Literal["left", "inner"] = "left"

    @field_validator("dataset")
    @classmethod
    def _strip_layer(cls, v: str) -> str:
        return v.removeprefix("silver.")


class AggregationTarget(Spec):
    keys: list[str] | None = None
    partition_by: list[str] = Field(default_factory=list)


class AggregationSpec(Located):
    name: str = Field(pattern=IDENT)
    description: str | None = None
    source_dataset: str = Field(alias="from")
    date_column: str = Field(description="the source column whose dates this run touched; gold is recomputed "
                                         "for exactly those dates")
    joins: list[Join] = Field(default_factory=list)
    filter: str | None = None
    group_by: list[str] = Field(min_length=1)
    measures: dict[str, str] = Field(min_length=1)
    derived: dict[str, str] = Field(default_factory=dict)
    target: AggregationTarget = Field(default_factory=AggregationTarget)

    @field_validator("source_dataset")
    @classmethod
    def _strip_layer(cls, v: str) -> str:
        return v.removeprefix("silver.")

    @model_validator(mode="after")
    def _date_grouped(self) -> Self:
        if self.date_column not in self.group_by:
            raise ValueError(f"date_column {self.date_column!r} must be one of group_by {self.group_by}")
        outputs = set(self.group_by) | set(self.measures) | set(self.derived)
        missing = [k for k in self.keys if k not in outputs]
        if missing:
            raise ValueError(f"target.keys names unknown column(s) {missing}")
        return self

    @property
    def keys(self) -> list[str]:
        return list(self.target.keys or self.group_by)
