"""Dataset checks as Spark aggregates: each check that needs one gets its SQL aggregate from its registered kind
(specs.dataset_checks), computed in the same Spark job as the batch's row counts (pipeline.measure)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse.rules.checks import HAS_ERROR
from lakehouse.specs import models as m
from lakehouse.specs.dataset_checks import aggregate_sql
from lakehouse.sql import ident


def aggregates(spec: m.DatasetSpec) -> dict[int, Column]:
    """Check index -> the aggregate column it needs over the valid rows, for the checks that need one."""
    valid = f"NOT {ident(HAS_ERROR)}"
    out = {}
    for i, check in enumerate(spec.dataset_checks):
        sql = aggregate_sql(check, valid)
        if sql is not None:
            out[i] = F.expr(sql)
    return out
