"""What a MERGE is, apart from the engine that runs it: the plan (`MergePlan`, SQL over the aliases `s` and `t`),
what it did (`MergeResult`), and how a source is sorted against a snapshot of its target before a MERGE that
replaces or leaves unchanged rows out (`compare`): each source key new, changed or held already unchanged, each
target row of the replace scope that the source no longer has stale. `TableEngine.merge_replacing` runs it."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.frames import one_row
from lakehouse.sql import Dialect, column, in_list, literal, qualified


@dataclass(frozen=True)
class MergeResult:
    """What one MERGE did. `unchanged` = source rows that matched a target row that needed no update."""

    source_rows: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    files_added: int = 0
    files_removed: int = 0
    version: int | None = None

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any], names: tuple[str, ...], version: int | None) -> MergeResult:
        """From an engine's MERGE metrics; `names` are its keys for source rows, inserted, updated, deleted,
        files added and files removed, in that order."""
        values = [int(metrics.get(name, 0) or 0) for name in names]
        source_rows, inserted, updated, deleted, added, removed = values
        return cls(source_rows, inserted, updated, deleted, added, removed, version)

    @property
    def unchanged(self) -> int:
        return max(self.source_rows - self.inserted - self.updated, 0)

    def plus(self, inserted: int = 0, unchanged: int = 0, deleted: int = 0, files_added: int = 0,
             version: int | None = None) -> MergeResult:
        """This result and a further commit's (or rows left out before the MERGE: `unchanged`) added up; the
        version is the later one's when given. Source rows grow by the rows inserted and unchanged."""
        return replace(self, source_rows=self.source_rows + inserted + unchanged, inserted=self.inserted + inserted,
                       deleted=self.deleted + deleted, files_added=self.files_added + files_added,
                       version=self.version if version is None else version)


@dataclass(frozen=True)
class MergePlan:
    """A MERGE described once, as SQL over aliases `s` (source) and `t` (target)."""

    keys: list[str]
    partition_by: list[str] = field(default_factory=list)
    update_when: str | None = None
    # restrict the scan of the target to these partition values (the values present in the source)
    partition_values: dict[str, list[Any]] = field(default_factory=dict)
    # replace scope (column -> values): target rows inside it that have no source row are deleted. Done as a
    # pruned read + anti-join and a delete-only MERGE, never a "not matched by source" clause: that clause
    # makes the engines scan the whole table.
    replace_scope: dict[str, list[Any]] | None = None
    evolve_schema: bool = False
    # a delete-only plan: matched rows where this condition holds are deleted, nothing else
    delete_matched_when: str | None = None
    # a content-hash column: source rows whose (keys, hash) the target already holds are left out of the
    # MERGE (they could not change anything), so a rerun's MERGE has nothing to do
    content_hash: str | None = None
    # keys may be null (a gold table's group of a left join's unmatched rows): a null key matches a null key
    null_safe_keys: bool = False
    # the source's key range (`within_reach`): in the condition Spark writes, a target-only predicate by which
    # delta-spark's MERGE skips the files no source row can match. Not given to delta-rs, whose MERGE here
    # changes few rows (its new rows are appended)
    key_range: KeyRange | None = None

    def scope_condition(self, alias: str = "", dialect: Dialect = "spark") -> str:
        return " AND ".join(in_list(qualified(alias, c), v, dialect) for c, v in (self.replace_scope or {}).items())

    def condition(self, dialect: Dialect = "spark") -> str:
        equal = ("<=>" if dialect == "spark" else "IS NOT DISTINCT FROM") if self.null_safe_keys else "="
        # each comparison in parentheses: delta-rs's parser binds `IS NOT DISTINCT FROM` looser than AND
        on = [f"({qualified('t', k)} {equal} {qualified('s', k)})" for k in self.keys]
        for col, values in self.partition_values.items():
            on.append(in_list(qualified("t", col), values, dialect))
        if self.key_range is not None and dialect == "spark":
            on.append(f"({self.key_range.sql('t')})")
        return " AND ".join(on)


@dataclass(frozen=True)
class Comparison:
    """A source's keys sorted against a target snapshot's: `kinds` are the conditions (inserts, changed, same,
    stale) over the rows of `narrow`, the full outer join of the two sides' keys and content hashes."""

    plan: MergePlan
    target: DataFrame  # the target's keys, the partition columns the keys lack, its scope flag and hash
    narrow: DataFrame
    kinds: dict[str, Column]
    held_partitions: dict[str, str]  # a partition column the keys lack -> its name in `target`

    def stale(self) -> DataFrame:
        """The keys (and partition values) of the target rows in scope that the source no longer has."""
        return self.narrow.where(self.kinds["stale"]).select(
            *[column(k) for k in self.plan.keys],
            *[F.col(alias).alias(c) for c, alias in self.held_partitions.items()])

    def rows(self, df: DataFrame, columns: list[Column], kinds: list[str]) -> dict[str, DataFrame]:
        """The source rows of each of `kinds` (changed, inserts), with all their `columns`: the source left-joined
        once to the same target snapshot."""
        digest = self.plan.content_hash
        full = join_on_keys(df.withColumn("_new", F.lit(True)), self.target, self.plan, "left").withColumn(
            "_new_hash", column(digest) if digest else F.lit(None))
        return {k: full.where(self.kinds[k]).select(*columns) for k in kinds}


def compare(df: DataFrame, held: DataFrame, plan: MergePlan) -> Comparison:
    """`df` (the source) sorted against `held` (the target's rows in the plan's partitions, at one version)."""
    keys = [column(k) for k in plan.keys]
    held_partitions = {c: f"_held_part_{i}" for i, c in enumerate(plan.partition_values) if c not in plan.keys}
    digest = plan.content_hash
    target = held.select(
        *keys, *[column(c).alias(alias) for c, alias in held_partitions.items()],
        (F.expr(plan.scope_condition()) if plan.replace_scope else F.lit(False)).alias("_in_scope"),
        (column(digest) if digest else F.lit(None)).alias("_held_hash"), F.lit(True).alias("_held"))
    new, in_target = F.col("_new").isNotNull(), F.col("_held").isNotNull()
    same = (new & in_target & F.col("_new_hash").eqNullSafe(F.col("_held_hash"))) if digest else F.lit(False)
    kinds = {"inserts": new & ~in_target, "changed": new & in_target & ~same, "same": same,
             "stale": ~new & F.coalesce(F.col("_in_scope"), F.lit(False))}
    narrow = join_on_keys(df.select(*keys, (column(digest) if digest else F.lit(None)).alias("_new_hash"),
                                    F.lit(True).alias("_new")), target, plan, "full_outer")
    return Comparison(plan, target, narrow, kinds, held_partitions)


def join_on_keys(left: DataFrame, right: DataFrame, plan: MergePlan, how: str) -> DataFrame:
    """`left` joined to `right` on the plan's keys, each key once in the result (for an outer join, the value of
    the side that has the row). With `null_safe_keys`, a null key matches a null key."""
    if not plan.null_safe_keys:
        return left.join(right, on=plan.keys, how=how)
    held = {k: f"_held_key_{i}" for i, k in enumerate(plan.keys)}
    right = right.select(*[column(k).alias(held[k]) for k in plan.keys],
                         *[column(c) for c in right.columns if c not in held])
    on = functools.reduce(lambda a, b: a & b, [column(k).eqNullSafe(F.col(held[k])) for k in plan.keys])
    joined = left.join(right, on, how)
    merged = [F.coalesce(column(k), F.col(held[k])).alias(k) if how == "full_outer" else column(k)
              for k in plan.keys]
    return joined.select(*merged, *[column(c) for c in joined.columns if c not in plan.keys and c not in
                                    held.values()])


# key types whose bounds pass through a string literal unchanged (a timestamp's would through the session's zone)
_BOUNDED = (T.StringType, T.IntegralType, T.DateType, T.DecimalType)


@dataclass(frozen=True)
class KeyRange:
    """The smallest and largest value of each boundable key of a MERGE's source (None: every value null), as
    text with the key's SQL type. A target row outside it can match no source row."""

    bounds: tuple[tuple[str, str, str | None, str | None], ...]  # (key, type, lo, hi)
    null_safe: bool = False

    def sql(self, alias: str = "") -> str:
        """Spark SQL over `alias`: every key within its bounds (or null, when null keys match)."""
        parts = []
        for key, type_, lo, hi in self.bounds:
            name = qualified(alias, key)
            within = (f"{name} BETWEEN CAST({literal(lo)} AS {type_}) AND CAST({literal(hi)} AS {type_})"
                      if lo is not None else "false")
            parts.append(f"({within} OR {name} IS NULL)" if self.null_safe else f"({within})")
        return " AND ".join(parts) or "true"


def key_range(source: DataFrame, target: DataFrame, plan: MergePlan) -> KeyRange | None:
    """The source's `KeyRange` over the keys whose type `target` gives as boundable, from one aggregation of the
    source (a job); None when no key's type can be bounded."""
    types = {f.name: f.dataType for f in target.schema.fields}
    bounded = [k for k in plan.keys if isinstance(types.get(k), _BOUNDED)]
    if not bounded:
        return None
    bounds = one_row(source.agg(*[F.min(column(k)).cast("string").alias(f"lo{i}") for i, k in enumerate(bounded)],
                                *[F.max(column(k)).cast("string").alias(f"hi{i}") for i, k in enumerate(bounded)]))
    return KeyRange(tuple((k, types[k].simpleString(), bounds[f"lo{i}"], bounds[f"hi{i}"])
                          for i, k in enumerate(bounded)), plan.null_safe_keys)


def within_reach(source: DataFrame, target: DataFrame, plan: MergePlan) -> tuple[str, KeyRange] | None:
    """The target rows a MERGE of `source` can touch: those whose every key lies between the source's smallest
    and largest value of it (or is null, when null keys match), and those in the replace scope. A filter (Spark
    SQL) on the snapshot `compare` reads, so that the engines skip the files and row groups whose statistics put
    them out of reach (a day's new keys beside a partition of yesterday's, say) and the comparison joins only the
    rest; with the key range itself, which the plan's MERGE condition can carry (`MergePlan.key_range`). None
    when no key's type can be bounded, or when every row read is in the replace scope anyway."""
    scope = plan.replace_scope or {}
    if scope and all(plan.partition_values.get(c) == v for c, v in scope.items()):
        return None
    keys = key_range(source, target, plan)
    if keys is None:
        return None
    return (f"({keys.sql()}) OR ({plan.scope_condition()})" if scope else keys.sql()), keys
