"""Gold tables: declarative aggregations recomputed for exactly the dates a run touched, then MERGEd.

For each touched date the aggregate is recomputed from silver in full; the MERGE updates changed rows,
inserts new groups and deletes groups of those dates that no longer exist. Other dates are not read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline.silver import ROW_HASH, row_hash
from lakehouse.results import GoldOutcome
from lakehouse.session import evaluation_for
from lakehouse.specs.models import AggregationSpec
from lakehouse.sql import column
from lakehouse.tables.engine import MergePlan, TableEngine


def _business(df: DataFrame) -> DataFrame:
    return df.select(*[column(c) for c in df.columns if not c.startswith("_")])


def aggregate(spec: AggregationSpec, source: DataFrame, dims: dict[str, DataFrame]) -> DataFrame:
    """The aggregation over already-filtered silver rows; each joined table brings the columns its join names
    (`Join.apply`)."""
    df = _business(source)
    for join in spec.joins:
        df = join.apply(df, _business(dims[join.dataset]))
    if spec.filter:
        df = df.where(F.expr(spec.filter))
    out = df.groupBy(*[column(c) for c in spec.group_by]).agg(
        *[F.expr(expr).alias(name) for name, expr in spec.measures.items()])
    for name, expr in spec.derived.items():
        out = out.withColumn(name, F.expr(expr))
    return out


SPEC_COLUMN = "_spec"
LATER_JOIN_KEYS = ("select", "prefix", "as_of")


def spec_fingerprint(spec: AggregationSpec) -> str:
    """A digest of what the aggregation computes (its YAML as parsed): a gold row built under another one is
    stale."""
    dump = spec.model_dump(mode="json", by_alias=True, exclude={"description"})
    for join in dump["joins"]:  # keys added to joins later count only when set: an upgrade rebuilds no gold table
        for key in LATER_JOIN_KEYS:
            if join.get(key) is None:
                join.pop(key, None)
    text = json.dumps(dump, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dates_to_build(engine: TableEngine, spec: AggregationSpec) -> tuple[str, list[dt.date]] | None:
    """("new" | "changed", every date to build) when the gold table does not exist yet although its silver table
    does, or when it holds rows built under another version of its spec; None when it follows its spec."""
    lake = engine.layout
    if not engine.exists(lake.silver(spec.source_dataset)):
        return None
    gold = engine.read_or_none(lake.gold(spec.name))
    if gold is None:
        return "new", sorted(every_date(engine, spec))
    if SPEC_COLUMN in gold.columns and distinct_values(engine, lake.gold(spec.name), gold, SPEC_COLUMN) <= {
            spec_fingerprint(spec)}:
        return None
    return "changed", sorted(every_date(engine, spec))


def every_date(engine: TableEngine, spec: AggregationSpec) -> set[dt.date]:
    """The dates the gold table holds or its fact table could give it."""
    dates: set[dt.date] = set()
    for path in (engine.layout.silver(spec.source_dataset), engine.layout.gold(spec.name)):
        table = engine.read_or_none(path)
        if table is not None and spec.date_column in table.columns:
            dates |= {d for d in distinct_values(engine, path, table, spec.date_column) if d is not None}
    return dates


def distinct_values(engine: TableEngine, path: str, table: DataFrame, column: str) -> set[Any]:
    """The distinct values of `column` in the table at `path` (`table`, as Spark reads it): from the Delta log when
    it tells them (a partition column, or one spec fingerprint per file), without a Spark job; else from the
    rows."""
    known = engine.logged_values(path, column)
    if known is not None:
        return known
    return {r[0] for r in table.select(column).distinct().collect()}


def recompute(engine: TableEngine, spec: AggregationSpec, dates: list[dt.date], run_date: dt.date,
              run_id: str, rebuild: bool = False) -> GoldOutcome:
    """MERGE the aggregate of `dates` into the gold table. With `rebuild`, the table's rows are deleted first
    (its spec changed: every row is built again under the new one)."""
    outcome = GoldOutcome(spec.name, run_date, dates=sorted(dates))
    if not dates:
        outcome.status = "skipped"
        outcome.message = "no silver change touched this table's dates"
        return outcome
    lake = engine.layout
    if rebuild and engine.exists(lake.gold(spec.name)):
        engine.delete(lake.gold(spec.name), "TRUE")
    # a small aggregate takes the small path (session.evaluation_for), by the silver files it reads
    size = engine.size(lake.silver(spec.source_dataset), {spec.date_column: dates})
    size += sum(engine.size(lake.silver(j.dataset)) for j in spec.joins)
    with evaluation_for(engine.spark, size):
        return _merge_aggregate(engine, spec, dates, run_id, rebuild, outcome)


def _merge_aggregate(engine: TableEngine, spec: AggregationSpec, dates: list[dt.date], run_id: str,
                     rebuild: bool, outcome: GoldOutcome) -> GoldOutcome:
    lake = engine.layout
    source = engine.read(lake.silver(spec.source_dataset), partitions={spec.date_column: dates})
    dims = {j.dataset: engine.read(lake.silver(j.dataset)) for j in spec.joins}
    result = aggregate(spec, source, dims)
    columns = result.columns
    # the aggregate is read up to three times (sorting its rows against gold's, then writing the changed and the
    # new ones): it is computed once, from the silver files listed above, and kept
    result = (result.withColumn(ROW_HASH, row_hash(result, columns)).withColumn("_run_id", F.lit(run_id))
              .withColumn(SPEC_COLUMN, F.lit(spec_fingerprint(spec))).persist(StorageLevel.MEMORY_AND_DISK))
    plan = MergePlan(
        keys=spec.keys,
        partition_by=spec.target.partition_by,
        update_when=f"s.{ROW_HASH} <> t.{ROW_HASH}",
        partition_values={c: dates for c in spec.target.partition_by if c == spec.date_column},
        replace_scope={spec.date_column: dates},
        content_hash=ROW_HASH,
        evolve_schema=rebuild,
        null_safe_keys=True,  # a left join's unmatched facts group under a null (an unknown product's category)
    )
    try:
        outcome.merge = engine.merge_replacing(result, lake.gold(spec.name), plan)
    finally:
        result.unpersist()
    outcome.rows = outcome.merge.source_rows
    return outcome
