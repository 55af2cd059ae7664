"""Dataset checks: thresholds over the whole batch (row count, completeness, freshness, ...), each registered by one
decorated function that judges the batch:

    @dataset_check("completeness", observes="share of valid rows where the column is not null (`min`: 0–1)",
                   examples=["{check: completeness, column: customer_id, min: 0.95}"], columns=("column",),
                   aggregate=lambda valid, *, column, **_: f"count_if(({valid}) AND {ident(column)} IS NOT NULL)")
    def completeness(batch: Batch, *, column: str, min: Annotated[float, Field(ge=0, le=1)]) -> Verdict:
        ...

The function's keyword-only arguments become the spec model (`name` and `action` come with every check).
`aggregate`, when given, returns the SQL aggregate the check needs over the batch, given the SQL condition that
holds on a valid row; it is computed in the same Spark job as the batch's row counts and handed to the function as
`batch.aggregate`. `columns` names the arguments that name columns of the checked rows (validate-config finds
them in the schema, of the types `needs` gives). From this registry come the spec union (`DatasetCheck`), the
did-you-mean, validate-config's column checks and docs/rules.md's table (`table`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from lakehouse.specs.base import Spec, require_a_bound
from lakehouse.specs.names import snake_case
from lakehouse.specs.registry import Registry, arguments_text, check_names, model_of, names_text, positional
from lakehouse.specs.row_checks.common import bounds_text
from lakehouse.sql import ident


class DatasetCheckBase(Spec):
    """The arguments every dataset check takes."""

    check: str
    name: str | None = None
    action: Literal["warn", "fail"] = "fail"


@dataclass(frozen=True)
class Batch:
    """What a dataset check judges: one run date's counts, the check's aggregate (None when it has none or no row
    was read), the raw columns, the run date and the rows read by the latest earlier run."""

    valid: int  # rows that passed every error-level row check
    batch: int  # valid rows that would be merged (one per key)
    rows_read: int
    aggregate: Any
    raw_columns: list[str]
    run_date: dt.date
    previous_rows: int | None


@dataclass(frozen=True)
class Verdict:
    observed: float | None
    passed: bool
    threshold: str
    column: str | None


@dataclass
class DatasetCheckKind:
    """One registered dataset check: its names, model, judging function, aggregate and docs entry."""

    names: tuple[str, ...]
    model: type[DatasetCheckBase]
    judge: Callable[..., Verdict]
    arguments: list[str]
    observes: str
    examples: list[str]
    aggregate: Callable[..., str] | None = None
    columns: tuple[str, ...] = ()
    needs: tuple[str, tuple[str, ...]] | None = None
    previous: bool = False  # it reads the rows of the latest earlier run
    empty_days: bool = False  # a day without raw files is judged too (a failure fails that day)
    module: str = ""

    def args(self, check: DatasetCheckBase) -> dict[str, Any]:
        return {name: getattr(check, name) for name in self.arguments}

    def named_columns(self, check: DatasetCheckBase) -> list[str]:
        """The columns of the checked rows the check names, as written."""
        out: list[str] = []
        for argument in self.columns:
            value = getattr(check, argument)
            out += [value] if isinstance(value, str) else list(value or [])
        return out


REGISTRY: Registry[DatasetCheckKind] = Registry("dataset check")


def dataset_check(*names: str, observes: str, examples: Sequence[str], aggregate: Callable[..., str] | None = None,
                  columns: Sequence[str] = (), needs: tuple[str, tuple[str, ...]] | None = None,
                  previous: bool = False, empty_days: bool = False, base: type[DatasetCheckBase] | None = None
                  ) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Register the decorated function `(batch, *, arguments...) -> Verdict` as the dataset check `names[0]` (the
    others are aliases). `observes` and `examples` (YAML flow mappings) are its docs entry; `aggregate(valid, *,
    arguments...)` the SQL aggregate it needs; `columns` the arguments naming columns, `needs` their types (as
    Spark's type names, with the words that name them); `previous`: it reads the latest earlier run's rows;
    `empty_days`: a day without raw files is judged too; `base` a model adding validators."""
    check_names(names, "dataset check")

    def register(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
        if positional(fn) != ["batch"]:
            raise TypeError(f"{fn.__qualname__}: a dataset check takes (batch, *, arguments...)")
        model, arguments = model_of(fn, names, base or DatasetCheckBase,
                                    f"The `{names[0]}` dataset check: observes {observes}.")
        assert issubclass(model, DatasetCheckBase)
        unknown = [c for c in columns if c not in arguments]
        if unknown:
            raise TypeError(f"{fn.__qualname__}: columns names {unknown[0]!r}, which is not an argument")
        REGISTRY.add(DatasetCheckKind(tuple(names), model, fn, arguments, observes, list(examples), aggregate,
                                      tuple(columns), needs, previous, empty_days, fn.__module__))
        return fn

    return register


kind_of = REGISTRY.kind_of
model = REGISTRY.model


def aggregate_sql(check: DatasetCheckBase, valid: str) -> str | None:
    """The SQL aggregate `check` needs over the batch (None: it needs none); `valid` holds on a valid row."""
    kind = kind_of(check)
    return None if kind.aggregate is None else kind.aggregate(valid, **kind.args(check))


def judge(check: DatasetCheckBase, batch: Batch) -> Verdict:
    kind = kind_of(check)
    return kind.judge(batch, **kind.args(check))


def table() -> str:
    """docs/rules.md's table of dataset checks, one row per registered kind, by name."""
    rows = ["| check | arguments | observed value | example |", "| --- | --- | --- | --- |"]
    for kind in REGISTRY.unique():
        examples = ", ".join(f"`{e}`" for e in kind.examples)
        rows.append(f"| {names_text(kind)} | {arguments_text(kind)} | {kind.observes} | {examples} |")
    return "\n".join(rows)


# a dataset check of a spec: validated as the registered kind its `check:` names
DatasetCheck = REGISTRY.spec_type(DatasetCheckBase)


# ---------------------------------------------------------------------------------------------- the built-in ones

Share = Annotated[float, Field(ge=0, le=1)]
NUMERIC = ("a numeric column", ("byte", "short", "integer", "long", "float", "double", "decimal"))
TEMPORAL = ("a date or timestamp column", ("date", "timestamp", "timestamp_ntz"))


@dataset_check("row_count", observes="rows that would be merged (valid, deduplicated); with `min > 0` and "
                                     "`action: fail`, a day with no raw files fails too",
               examples=["{check: row_count, min: 1}"], empty_days=True)
def row_count(batch: Batch, *, min: Annotated[int | None, Field(ge=0)] = None,
              max: Annotated[int | None, Field(ge=0)] = None) -> Verdict:
    ok = (min is None or batch.batch >= min) and (max is None or batch.batch <= max)
    return Verdict(float(batch.batch), ok, bounds_text(min, max, unit="rows"), None)


@dataset_check("completeness", observes="share of valid rows where the column is not null (`min`: 0–1)",
               examples=["{check: completeness, column: customer_id, min: 0.95}"], columns=("column",),
               aggregate=lambda valid, *, column, **_: f"count_if(({valid}) AND {ident(column)} IS NOT NULL)")
def completeness(batch: Batch, *, column: str, min: Share) -> Verdict:
    observed = (batch.aggregate or 0) / batch.valid if batch.valid else 0.0
    return Verdict(observed, observed >= min, f">= {min}", column)


@dataset_check("uniqueness", observes="distinct combinations / valid rows (`min`: 0–1)",
               examples=["{check: uniqueness, columns: [email], min: 0.99, action: warn}"], columns=("columns",),
               aggregate=lambda valid, *, columns, **_:
               f"count(DISTINCT CASE WHEN {valid} THEN struct({', '.join(map(ident, columns))}) END)")
def uniqueness(batch: Batch, *, columns: Annotated[list[str], Field(min_length=1)], min: Share) -> Verdict:
    observed = (batch.aggregate or 0) / batch.valid if batch.valid else 1.0
    return Verdict(observed, observed >= min, f">= {min}", ",".join(columns))


@dataset_check("freshness", observes="hours between the latest value and the end of the run date (UTC), so "
                                     "backfills are judged by their own date",
               examples=["{check: freshness, column: transaction_timestamp, max_age_hours: 30}"],
               columns=("column",), needs=TEMPORAL,
               aggregate=lambda valid, *, column, **_: f"max(CASE WHEN {valid} THEN CAST({ident(column)} AS "
                                                       f"timestamp) END)")
def freshness(batch: Batch, *, column: str,
              max_age_hours: Annotated[float, Field(gt=0, description="latest value at most this old, measured "
                                                                      "at the end of the run date (UTC)")]
              ) -> Verdict:
    threshold = f"<= {max_age_hours} h"
    if batch.aggregate is None:
        return Verdict(None, False, threshold, column)
    reference = dt.datetime.combine(batch.run_date + dt.timedelta(days=1), dt.time())
    age = (reference - batch.aggregate.replace(tzinfo=None)).total_seconds() / 3600
    return Verdict(age, age <= max_age_hours, threshold, column)


class _Bounded(DatasetCheckBase):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        require_a_bound(self, self.check)
        return self


_STATS = {"min": "min", "max": "max", "mean": "avg", "stddev": "stddev_samp"}


@dataset_check("statistic", observes="the statistic over valid rows",
               examples=["{check: statistic, column: quantity, stat: mean, min: 1, max: 20}"], columns=("column",),
               needs=NUMERIC, base=_Bounded,
               aggregate=lambda valid, *, column, stat, **_: f"{_STATS[stat]}(CASE WHEN {valid} THEN "
                                                             f"CAST({ident(column)} AS double) END)")
def statistic(batch: Batch, *, column: str, stat: Literal["min", "max", "mean", "stddev"],
              min: float | None = None, max: float | None = None) -> Verdict:
    value = batch.aggregate
    ok = value is not None and (min is None or value >= min) and (max is None or value <= max)
    return Verdict(None if value is None else float(value), ok, f"{stat} {bounds_text(min, max)}", column)


@dataset_check("row_count_change", observes="\\|rows read − rows read by the latest successful earlier run "
                                            "date\\| / the latter; passes when there is no earlier run",
               examples=["{check: row_count_change, max_change: 0.5, action: warn}"], previous=True)
def row_count_change(batch: Batch, *, max_change: Annotated[float, Field(
        gt=0, description="largest allowed |rows - previous| / previous, previous being the rows read by the "
                          "latest successful earlier run date")]) -> Verdict:
    if not batch.previous_rows:
        return Verdict(None, True, f"|change| <= {max_change} (no earlier run)", None)
    change = abs(batch.rows_read - batch.previous_rows) / batch.previous_rows
    return Verdict(change, change <= max_change, f"|change| <= {max_change} vs {batch.previous_rows}", None)


@dataset_check("required_columns", observes="columns missing from the raw data (not only declared in `schema`)",
               examples=["{check: required_columns, columns: [transaction_id, quantity]}"])
def required_columns(batch: Batch, *, columns: Annotated[list[str], Field(
        min_length=1, description="columns that must be present in the raw data")]) -> Verdict:
    # a column as named in the files or as the reader maps it (snake_case, case-insensitive)
    present = {c.lower() for c in batch.raw_columns}
    missing = [c for c in columns if c.lower() not in present and snake_case(c) not in present]
    return Verdict(float(len(missing)), not missing, f"present: {columns}", ",".join(missing) or None)


RowCount: type[Any] = model("row_count")
Completeness: type[Any] = model("completeness")
Uniqueness: type[Any] = model("uniqueness")
Freshness: type[Any] = model("freshness")
Statistic: type[Any] = model("statistic")
RowCountChange: type[Any] = model("row_count_change")
RequiredColumns: type[Any] = model("required_columns")

__all__ = ["REGISTRY", "Batch", "Completeness", "DatasetCheck", "DatasetCheckBase", "DatasetCheckKind",
           "Freshness", "RequiredColumns", "RowCount", "RowCountChange", "Statistic", "Uniqueness", "Verdict",
           "aggregate_sql", "dataset_check", "judge", "kind_of", "model", "table"]
