"""An aggregation spec: a gold table computed from one silver dataset (joins, filter, group, measures)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Literal, Self

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from lakehouse.specs.base import IDENT, Located, Spec
from lakehouse.specs.dataset import VALIDITY

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class Join(Spec):
    dataset: str = Field(alias="table")
    on: list[str] = Field(min_length=1)
    how: Literal["left", "inner"] = "left"
    # the joined table's columns to bring besides the join keys (default: all of them)
    select: list[str] | None = Field(default=None, min_length=1)
    # put before the name of each column brought (a clash with the fact's own columns is a spec error)
    prefix: str | None = Field(default=None, pattern=IDENT)
    # a history dataset (`history: scd2`) joined as of this fact column's time: each fact row gets the version
    # valid then; without it, a history dataset's current versions are joined
    as_of: str | None = None

    def brought(self, columns: list[str]) -> dict[str, str]:
        """Of the joined table's `columns`, the ones this join brings besides its keys: name -> name in the joined
        rows (a history table's validity columns only when `select` names them)."""
        chosen = [c for c in columns if c not in self.on and (c in self.select if self.select is not None
                                                               else c not in VALIDITY)]
        return {c: f"{self.prefix or ''}{c}" for c in chosen}

    def apply(self, df: DataFrame, dim: DataFrame) -> DataFrame:
        """`df` joined to the joined table `dim` (business columns), bringing the columns this join brings under
        their names. validate-config rejects a clash the specs show; a column that appears later (a new raw
        column kept by `on_new_columns: add`) and clashes stays `df`'s."""
        from pyspark.sql import functions as F

        from lakehouse.sql import column

        taken = {c.lower() for c in df.columns}
        brought = {c: name for c, name in self.brought(dim.columns).items() if name.lower() not in taken}
        if "valid_from" not in dim.columns:
            return df.join(dim.select(*[column(c) for c in self.on],
                                      *[column(c).alias(n) for c, n in brought.items()]), on=self.on, how=self.how)
        if self.as_of is None:
            current = dim.where(F.col("is_current"))
            return df.join(current.select(*[column(c) for c in self.on],
                                          *[column(c).alias(n) for c, n in brought.items()]), on=self.on,
                           how=self.how)
        # as of the fact's time: the version whose [valid_from, valid_to) holds it; a fact older than a key's
        # first version takes that one (the earliest known)
        from pyspark.sql import Window

        first = F.min("valid_from").over(Window.partitionBy(*[column(c) for c in self.on]))
        held = dim.select(*[column(c).alias(f"_dim_{c}") for c in self.on],
                          F.when(F.col("valid_from") == first, F.lit(None)).otherwise(F.col("valid_from"))
                          .alias("_dim_from"), F.col("valid_to").alias("_dim_to"),
                          *[column(c).alias(n) for c, n in brought.items()])
        at = column(self.as_of)
        on = [column(c) == F.col(f"_dim_{c}") for c in self.on]
        on += [F.col("_dim_from").isNull() | (F.col("_dim_from") <= at),
               F.col("_dim_to").isNull() | (at < F.col("_dim_to"))]
        joined = df.join(held, functools.reduce(lambda a, b: a & b, on), self.how)
        return joined.drop(*[f"_dim_{c}" for c in self.on], "_dim_from", "_dim_to")

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
