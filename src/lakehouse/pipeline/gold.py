"""Gold tables: declarative aggregations recomputed for exactly the dates a run touched, then MERGEd.

For each touched date the aggregate is recomputed from silver in full; the MERGE updates changed rows,
inserts new groups and deletes groups of those dates that no longer exist. Other dates are not read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline.dataset import ROW_HASH, row_hash
from lakehouse.specs.models import AggregationSpec
from lakehouse.tables.engine import MergePlan, MergeResult, TableEngine


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


def _business(df: DataFrame) -> DataFrame:
    return df.select(*[F.col(f"`{c}`") for c in df.columns if not c.startswith("_")])


def aggregate(spec: AggregationSpec, source: DataFrame, dims: dict[str, DataFrame]) -> DataFrame:
    """The aggregation over already-filtered silver rows. Joined tables contribute only the columns the
    source does not already have."""
    df = _business(source)
    for join in spec.joins:
        dim = _business(dims[join.dataset])
        keep = [c for c in dim.columns if c in join.on or c not in df.columns]
        df = df.join(dim.select(*[F.col(f"`{c}`") for c in keep]), on=join.on, how=join.how)
    if spec.filter:
        df = df.where(F.expr(spec.filter))
    out = df.groupBy(*[F.col(f"`{c}`") for c in spec.group_by]).agg(
        *[F.expr(expr).alias(name) for name, expr in spec.measures.items()])
    for name, expr in spec.derived.items():
        out = out.withColumn(name, F.expr(expr))
    return out


def recompute(engine: TableEngine, spec: AggregationSpec, dates: list[dt.date], run_date: dt.date,
              run_id: str) -> GoldOutcome:
    outcome = GoldOutcome(spec.name, run_date, dates=sorted(dates))
    if not dates:
        outcome.status = "skipped"
        outcome.message = "no silver change touched this table's dates"
        return outcome
    lake = engine.layout
    source = engine.read(lake.silver(spec.source_dataset), partitions={spec.date_column: dates})
    dims = {j.dataset: engine.read(lake.silver(j.dataset)) for j in spec.joins}
    result = aggregate(spec, source, dims)
    columns = result.columns
    result = result.withColumn(ROW_HASH, row_hash(result, columns)).withColumn("_run_id", F.lit(run_id))
    plan = MergePlan(
        keys=spec.keys,
        partition_by=spec.target.partition_by,
        update_when=f"s.{ROW_HASH} <> t.{ROW_HASH}",
        partition_values={c: dates for c in spec.target.partition_by if c == spec.date_column},
        replace_scope={spec.date_column: dates},
        content_hash=ROW_HASH,
    )
    outcome.merge = engine.merge_replacing(result, lake.gold(spec.name), plan)
    outcome.rows = outcome.merge.source_rows
    return outcome
