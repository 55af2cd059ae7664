"""Dataset checks: whole-batch thresholds (row count, completeness, uniqueness, freshness, statistics, row count
change, required columns), judged against the spec.

Each kind of check is one `DatasetCheckRule`: what it aggregates over the batch (computed in the same Spark job
as the row counts) and how it judges the result. `RULES` maps every kind of the spec union to its rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse.specs import models as m
from lakehouse.specs.names import snake_case
from lakehouse.specs.row_checks.common import bounds_text
from lakehouse.sql import ident


@dataclass(frozen=True)
class DatasetCheckContext:
    """What a dataset check is judged with: the batch's counts, its aggregate (None for checks that have none),
    the raw columns, the run date and the rows of the latest earlier run."""

    valid: int  # rows that passed every error-level row check
    batch: int  # valid rows that would be merged (one per key)
    rows_read: int
    aggregate: Any
    raw_columns: list[str]
    run_date: dt.date
    previous_rows: int | None


@dataclass(frozen=True)
class DatasetCheckResult:
    observed: float | None
    passed: bool
    threshold: str
    column: str | None


@dataclass(frozen=True)
class DatasetCheckRule:
    judge: Callable[[Any, DatasetCheckContext], DatasetCheckResult]
    aggregate: Callable[[Any, Column], Column] | None = None  # (check, valid-row condition) -> aggregate column


def _col(name: str) -> Column:
    return F.col(ident(name))


def _row_count(check: m.RowCount, ctx: DatasetCheckContext) -> DatasetCheckResult:
    ok = (check.min is None or ctx.batch >= check.min) and (check.max is None or ctx.batch <= check.max)
    return DatasetCheckResult(float(ctx.batch), ok, bounds_text(check.min, check.max, unit="rows"), None)


def _completeness(check: m.Completeness, ctx: DatasetCheckContext) -> DatasetCheckResult:
    observed = (ctx.aggregate or 0) / ctx.valid if ctx.valid else 0.0
    return DatasetCheckResult(observed, observed >= check.min, f">= {check.min}", check.column)


def _uniqueness(check: m.Uniqueness, ctx: DatasetCheckContext) -> DatasetCheckResult:
    observed = (ctx.aggregate or 0) / ctx.valid if ctx.valid else 1.0
    return DatasetCheckResult(observed, observed >= check.min, f">= {check.min}", ",".join(check.columns))


def _freshness(check: m.Freshness, ctx: DatasetCheckContext) -> DatasetCheckResult:
    threshold = f"<= {check.max_age_hours} h"
    if ctx.aggregate is None:
        return DatasetCheckResult(None, False, threshold, check.column)
    reference = dt.datetime.combine(ctx.run_date + dt.timedelta(days=1), dt.time())
    age = (reference - ctx.aggregate.replace(tzinfo=None)).total_seconds() / 3600
    return DatasetCheckResult(age, age <= check.max_age_hours, threshold, check.column)


def _statistic(check: m.Statistic, ctx: DatasetCheckContext) -> DatasetCheckResult:
    stat = ctx.aggregate
    ok = stat is not None and (check.min is None or stat >= check.min) and (check.max is None or stat <= check.max)
    return DatasetCheckResult(None if stat is None else float(stat), ok,
                              f"{check.stat} {bounds_text(check.min, check.max)}", check.column)


def _row_count_change(check: m.RowCountChange, ctx: DatasetCheckContext) -> DatasetCheckResult:
    if not ctx.previous_rows:
        return DatasetCheckResult(None, True, f"|change| <= {check.max_change} (no earlier run)", None)
    change = abs(ctx.rows_read - ctx.previous_rows) / ctx.previous_rows
    return DatasetCheckResult(change, change <= check.max_change,
                              f"|change| <= {check.max_change} vs {ctx.previous_rows}", None)


def _required_columns(check: m.RequiredColumns, ctx: DatasetCheckContext) -> DatasetCheckResult:
    # a column as named in the files or as the reader maps it (snake_case, case-insensitive)
    present = {c.lower() for c in ctx.raw_columns}
    missing = [c for c in check.columns if c.lower() not in present and snake_case(c) not in present]
    return DatasetCheckResult(float(len(missing)), not missing, f"present: {check.columns}", ",".join(missing) or None)


_STATS = {"min": F.min, "max": F.max, "mean": F.avg, "stddev": F.stddev_samp}

RULES: dict[type, DatasetCheckRule] = {
    m.RowCount: DatasetCheckRule(_row_count),
    m.Completeness: DatasetCheckRule(
        _completeness, lambda c, valid: F.sum((valid & _col(c.column).isNotNull()).cast("int"))),
    m.Uniqueness: DatasetCheckRule(
        _uniqueness, lambda c, valid: F.count_distinct(F.when(valid, F.struct(*[_col(x) for x in c.columns])))),
    m.Freshness: DatasetCheckRule(
        _freshness, lambda c, valid: F.max(F.when(valid, _col(c.column).cast("timestamp")))),
    m.Statistic: DatasetCheckRule(
        _statistic, lambda c, valid: _STATS[c.stat](F.when(valid, _col(c.column).cast("double")))),
    m.RowCountChange: DatasetCheckRule(_row_count_change),
    m.RequiredColumns: DatasetCheckRule(_required_columns),
}


def rule_for(check: m.DatasetCheck) -> DatasetCheckRule:
    try:
        return RULES[type(check)]
    except KeyError:
        raise TypeError(f"no rule for dataset check {check!r}") from None


def aggregates(spec: m.DatasetSpec, valid: Column) -> dict[int, Column]:
    """Check index -> the aggregate column it needs, for the checks that aggregate over the batch."""
    out = {}
    for i, check in enumerate(spec.dataset_checks):
        aggregate = rule_for(check).aggregate
        if aggregate is not None:
            out[i] = aggregate(check, valid)
    return out


def judge(check: m.DatasetCheck, ctx: DatasetCheckContext) -> DatasetCheckResult:
    return rule_for(check).judge(check, ctx)
