"""Dataset checks: whole-batch thresholds (row count, completeness, uniqueness, freshness, statistics, row count
change, required columns) computed with the batch's counts and judged against the spec."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pyspark.sql import functions as F

from lakehouse.rules.checks import bounds_text
from lakehouse.specs import models as m
from lakehouse.specs.names import snake_case


@dataclass
class DatasetCheckContext:
    valid: int
    batch: int
    rows_read: int
    stats: dict[str, Any]
    raw_columns: list[str]
    run_date: dt.date
    previous_rows: int | None


def dataset_check_aggregates(spec: m.DatasetSpec, valid) -> dict[str, Any]:
    """The aggregate columns the dataset checks need, computed in the same job as the row counts."""
    aggs: dict[str, Any] = {}
    for i, c in enumerate(spec.dataset_checks):
        key = f"dcheck_{i}"
        if isinstance(c, m.Completeness):
            aggs[key] = F.sum((valid & F.col(f"`{c.column}`").isNotNull()).cast("int"))
        elif isinstance(c, m.Uniqueness):
            aggs[key] = F.count_distinct(F.when(valid, F.struct(*[F.col(f"`{x}`") for x in c.columns])))
        elif isinstance(c, m.Freshness):
            aggs[key] = F.max(F.when(valid, F.col(f"`{c.column}`").cast("timestamp")))
        elif isinstance(c, m.Statistic):
            fn = {"min": F.min, "max": F.max, "mean": F.avg, "stddev": F.stddev_samp}[c.stat]
            aggs[key] = fn(F.when(valid, F.col(f"`{c.column}`").cast("double")))
    return aggs


def evaluate_dataset_check(check: m.DatasetCheck, index: int, ctx: DatasetCheckContext
                           ) -> tuple[float | None, bool, str, str | None]:
    """(observed value, passed, threshold text, column) of one dataset check."""
    stat = ctx.stats.get(f"dcheck_{index}")
    match check:
        case m.RowCount():
            ok = (check.min is None or ctx.batch >= check.min) and (check.max is None or ctx.batch <= check.max)
            return float(ctx.batch), ok, bounds_text(check.min, check.max, unit="rows"), None
        case m.Completeness():
            observed = (stat or 0) / ctx.valid if ctx.valid else 0.0
            return observed, observed >= check.min, f">= {check.min}", check.column
        case m.Uniqueness():
            observed = (stat or 0) / ctx.valid if ctx.valid else 1.0
            return observed, observed >= check.min, f">= {check.min}", ",".join(check.columns)
        case m.Freshness():
            reference = dt.datetime.combine(ctx.run_date + dt.timedelta(days=1), dt.time())
            if stat is None:
                return None, False, f"<= {check.max_age_hours} h", check.column
            age = (reference - stat.replace(tzinfo=None)).total_seconds() / 3600
            return age, age <= check.max_age_hours, f"<= {check.max_age_hours} h", check.column
        case m.Statistic():
            ok = stat is not None and (check.min is None or stat >= check.min) and (
                check.max is None or stat <= check.max)
            return (None if stat is None else float(stat)), ok, f"{check.stat} {bounds_text(check.min, check.max)}", \
                check.column
        case m.RowCountChange():
            if not ctx.previous_rows:
                return None, True, f"|change| <= {check.max_change} (no earlier run)", None
            change = abs(ctx.rows_read - ctx.previous_rows) / ctx.previous_rows
            return change, change <= check.max_change, f"|change| <= {check.max_change} vs {ctx.previous_rows}", None
        case m.RequiredColumns():
            # a column as named in the files or as the reader maps it (snake_case, case-insensitive)
            present = {c.lower() for c in ctx.raw_columns}
            missing = [c for c in check.columns if c.lower() not in present and snake_case(c) not in present]
            return float(len(missing)), not missing, f"present: {check.columns}", ",".join(missing) or None
    raise TypeError(f"no evaluation for dataset check {check!r}")
