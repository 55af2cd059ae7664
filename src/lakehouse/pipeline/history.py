"""Dimensions with history (`history: scd2`): silver keeps every version of a key, valid from its change time
(`valid_from`) until the next version's (`valid_to`, null while current; `is_current`).

A load rebuilds the history of the keys its batch carries: the versions silver holds for them (less those that
came from the files the batch reads again, which it replaces) and the batch's rows, ordered by change time; a
version whose tracked columns equal the one before it is no new version (it folds into it: the earlier start, the
latest values of the ignored columns). Each version's interval then ends where the next begins. So a late or
out-of-order version lands between the right two, closing the interval it falls in; a rerun rebuilds the same
rows (the MERGE, by key, `valid_from` and content hash, writes nothing); and the keys' versions silver holds but
the rebuild does not are deleted (the MERGE's replace scope is the keys, as JSON text in `_entity`).

A version's lineage (`_source_file`, ...) is that of the row that started it. Rows of other files folded into a
version that came from a file later changed and loaded again are not read again from bronze; a full refresh
restores them.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.pipeline.silver import ROW_HASH, SILVER_LINEAGE, one_per_key, row_hash
from lakehouse.specs import models as m
from lakehouse.specs.dataset import VALIDITY
from lakehouse.sql import column
from lakehouse.tables.engine import MergePlan

VALID_FROM, VALID_TO, IS_CURRENT = VALIDITY
ENTITY = "_entity"


def entity(keys: list[str]) -> Column:
    """A key as one text value (JSON of the key columns): what the MERGE's replace scope names."""
    return F.to_json(F.struct(*[column(k) for k in keys]))


def incoming(spec: m.DatasetSpec, valid: DataFrame) -> DataFrame:
    """The batch's valid rows as versions: `valid_from` the change time (a null one, or none declared: the run
    date the row was loaded for), one row per key and change time (the latest, as for a MERGE)."""
    history = spec.history
    assert history is not None
    loaded_for = F.col("_source_date")
    if history.changed_at:
        changed = column(history.changed_at)
        start = F.coalesce(changed, loaded_for.cast(valid.schema[history.changed_at].dataType))
    else:
        start = loaded_for
    # a batch of several run dates keeps each day's version when the change time is the run date
    keys = [*spec.keys, history.changed_at or "_source_date"]
    return one_per_key(spec, valid, keys).withColumn(VALID_FROM, start)


def touched_entities(versions: DataFrame) -> list[str]:
    return sorted(r[0] for r in versions.select(ENTITY).distinct().collect())


def rebuild(spec: m.DatasetSpec, new: DataFrame, held: DataFrame | None, business: list[str]) -> DataFrame:
    """Every version of the keys of `new` (the batch's versions, from `incoming`), given `held`: silver's rows of
    those keys the batch keeps. Columns: `business`, the validity columns, the lineage, `_entity` and the content
    hash (over the business and validity columns)."""
    keys = [column(k) for k in spec.keys]
    lineage = list(SILVER_LINEAGE)
    columns = [*business, VALID_FROM, *lineage]
    rows = new.select(*[column(c) for c in columns], F.lit(1).alias("_priority"))
    if held is not None:
        rows = rows.unionByName(held.select(*[column(c) for c in columns], F.lit(0).alias("_priority")),
                                allowMissingColumns=True)
    # one row per key and change time: the batch's, over what silver held
    same_start = Window.partitionBy(*keys, column(VALID_FROM)).orderBy(F.col("_priority").desc())
    rows = rows.withColumn("_n", F.row_number().over(same_start)).where("_n = 1").drop("_n", "_priority")
    tracked = spec.tracked_columns()
    rows = rows.withColumn("_tracked", row_hash(rows, tracked))
    in_time = Window.partitionBy(*keys).orderBy(column(VALID_FROM))
    before = F.lag("_tracked").over(in_time)
    rows = rows.withColumn("_starts", (before.isNull() | (before != F.col("_tracked"))).cast("int"))
    rows = rows.withColumn("_version", F.sum("_starts").over(in_time.rowsBetween(Window.unboundedPreceding, 0)))
    version = Window.partitionBy(*keys, F.col("_version"))
    latest = version.orderBy(column(VALID_FROM).desc())
    first = version.orderBy(column(VALID_FROM))
    # the version's start, and its first row's lineage; the latest values of the rest (tracked ones are equal)
    rows = rows.withColumns({
        "_first": F.first(column(VALID_FROM)).over(first.rowsBetween(Window.unboundedPreceding,
                                                                     Window.unboundedFollowing)),
        **{f"_first{c}": F.first(column(c)).over(first.rowsBetween(Window.unboundedPreceding,
                                                                   Window.unboundedFollowing)) for c in lineage},
        "_latest": F.row_number().over(latest)})
    versions = (rows.where("_latest = 1")
                .withColumns({VALID_FROM: F.col("_first"), **{c: F.col(f"_first{c}") for c in lineage}}))
    versions = versions.withColumn(VALID_TO, F.lead(column(VALID_FROM)).over(in_time))
    versions = versions.withColumn(IS_CURRENT, F.col(VALID_TO).isNull())
    out = versions.select(*[column(c) for c in business], VALID_FROM, VALID_TO, IS_CURRENT, *lineage,
                          entity(spec.keys).alias(ENTITY))
    return out.withColumn(ROW_HASH, row_hash(out, [*business, *VALIDITY]))


def held_versions(silver: DataFrame | None, entities: list[str], replaced: dict[str, list[Any]]) -> DataFrame | None:
    """Silver's versions of `entities`, less those the batch replaces (`replaced`: lineage column -> values, the
    files read again, or the raw days rebuilt from bronze)."""
    if silver is None or not entities:
        return None
    rows = silver.where(F.col(ENTITY).isin(entities))
    for name, values in replaced.items():
        rows = rows.where(~F.col(name).isin(values))
    return rows


def history_plan(spec: m.DatasetSpec, entities: list[str], evolve_schema: bool) -> MergePlan:
    """The MERGE of a rebuilt history: by key and `valid_from`, the keys' other versions deleted."""
    return MergePlan(keys=spec.merge_keys, update_when=f"s.{ROW_HASH} <> t.{ROW_HASH}",
                     replace_scope={ENTITY: entities}, content_hash=ROW_HASH, evolve_schema=evolve_schema)
