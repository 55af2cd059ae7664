"""Silver: the batch's valid rows, one per key (the latest), compared by key and content hash with the silver
table and MERGEd; the content hash and the update rule live here, and gold uses the same hash."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.frames import is_small
from lakehouse.rules.checks import has_error
from lakehouse.rules.failures import RESCUED
from lakehouse.specs import models as m
from lakehouse.specs.cleaning_steps.rows import superseded
from lakehouse.sql import column, ident, literal
from lakehouse.tables.engine import MergePlan

ROW_HASH = "_row_hash"
# up to this many repeated keys in a batch are resolved by broadcasting them (see one_per_key)
BROADCAST_REPEATED_KEYS = 200_000
SILVER_LINEAGE = ["_source_file", "_source_date", "_run_id", "_ingested_at"]


def row_hash(df: DataFrame, columns: list[str]) -> Column:
    """A content hash of the business columns: a matched silver/gold row is rewritten only when it changes.
    Each non-null value is hashed with its column's name and the hashes are combined by XOR, so the hash does not
    depend on the order of the columns, and a null value counts as an absent column: a batch that carries an
    optional or evolved column with nulls (a full refresh from bronze, a later day's files) hashes like one
    without it. Nested values are hashed through their JSON text."""
    parts = []
    for c in sorted(columns):
        nested = isinstance(df.schema[c].dataType, T.StructType | T.ArrayType | T.MapType)
        value = f"to_json({ident(c)})" if nested else ident(c)
        parts.append(f"(CASE WHEN {ident(c)} IS NULL THEN 0L ELSE xxhash64({literal(c)}, {value}) END)")
    return F.expr(" ^ ".join(parts) if parts else "0L")


def valid_rows(checked: DataFrame, days: list[dt.date] | None = None) -> tuple[DataFrame, list[str]]:
    """The checked rows that may reach silver (of the run `days`, when given): no error, not set aside by a dedup
    step; their run date as `_source_date` and their content hash added. And the business columns (with the
    values rescued from them under `on_type_mismatch: rescue`)."""
    business = [c for c in checked.columns if not c.startswith("_") or c == RESCUED]
    keep = ~has_error() & ~superseded(checked)
    if days is not None:
        keep = keep & F.col("_partition_date").isin(days)
    valid = (checked.where(keep).withColumnRenamed("_partition_date", "_source_date")
             .withColumn(ROW_HASH, row_hash(checked, business)))
    return valid, business


def silver_update_condition(spec: m.DatasetSpec) -> str:
    """Update a matched row only when the content changed and the source row is not older."""
    newer = "s._source_date >= t._source_date"
    if spec.sequence_by:
        q = ident(spec.sequence_by)
        newer = (f"(s.{q} > t.{q} OR t.{q} IS NULL OR "
                 f"((s.{q} IS NOT DISTINCT FROM t.{q}) AND s._source_date >= t._source_date))")
    condition = f"s.{ROW_HASH} <> t.{ROW_HASH} AND {newer}"
    if spec.target.merge_update_when:
        condition += f" AND ({spec.target.merge_update_when})"
    return condition


def deduplicate(spec: m.DatasetSpec, keys: list[str] | None = None) -> Callable[[DataFrame], DataFrame]:
    """DataFrame -> DataFrame: keep one row per key (`keys`, default the spec's batch keys), the latest by the
    sequence column then the raw day."""
    order = []
    if spec.sequence_by:
        order.append(column(spec.sequence_by).desc_nulls_last())
    order += [F.col("_source_date").desc(), F.col("_source_file").desc(), F.col(ROW_HASH).desc()]
    window = Window.partitionBy(*[column(k) for k in keys or spec.batch_keys]).orderBy(*order)
    return lambda df: df.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


def one_per_key(spec: m.DatasetSpec, valid: DataFrame, keys: list[str] | None = None) -> DataFrame:
    """The latest row per key. Keys that occur more than once are found first (an aggregation over the keys
    alone); when they are few, only their rows are ranked, so the day's rows are not shuffled and sorted
    to resolve a handful of corrections. The repeated keys and their ranked rows are each computed once and kept
    (a local checkpoint), so the rows are read three times in all: to find the repeated keys, to rank theirs and
    to pass the others through (each later read of the result reads the rows once more, column-pruned). Many
    repeated keys rank every row, once, kept as a local checkpoint. A small batch (a week of small days) is
    ranked at once: finding its repeated keys first would cost a Spark job more than ranking it."""
    keys = keys or spec.batch_keys
    if is_small(valid):
        return valid.transform(deduplicate(spec, keys))
    repeated = valid.groupBy(*[column(k) for k in keys]).count().where("count > 1").drop("count").localCheckpoint()
    found = repeated.count()
    if found == 0:
        return valid
    if found > BROADCAST_REPEATED_KEYS:  # ranked once and kept: the callers read the result more than once
        return valid.transform(deduplicate(spec, keys)).localCheckpoint()
    marked = valid.join(F.broadcast(repeated.withColumn("_repeated", F.lit(True))), on=keys, how="left")
    single = marked.where(F.col("_repeated").isNull()).drop("_repeated")
    several = marked.where(F.col("_repeated")).drop("_repeated").transform(deduplicate(spec, keys)).localCheckpoint()
    return single.unionByName(several)


def silver_plan(spec: m.DatasetSpec, values: dict[str, list[Any]], source_files: list[str],
                run_dates: list[dt.date], from_bronze: bool, evolve_schema: bool) -> MergePlan:
    """The MERGE of a batch into silver. The days' files were read again in full: a silver row that came from
    one of them and is no longer among its valid rows is deleted (within the partitions the batch touches). A
    rebuild from bronze puts every silver row of the raw days in scope, wherever it is partitioned."""
    partitions: dict[str, list[Any]] = {}
    scope: dict[str, list[Any]]
    if from_bronze:
        scope = {"_source_date": sorted(run_dates)}
    else:
        partitions = {c: values[c] for c in spec.target.partition_by}
        scope = {"_source_file": sorted(source_files)}
    return MergePlan(
        keys=spec.keys,
        partition_by=spec.target.partition_by,
        update_when=silver_update_condition(spec),
        partition_values=partitions,
        replace_scope=scope,
        content_hash=ROW_HASH,
        evolve_schema=evolve_schema,
    )
