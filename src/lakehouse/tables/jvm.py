"""The `jvm` engine: delta-spark (Delta Lake 4.0 on Spark's JVM), the distributed production engine.

It is chosen when Delta's classes load in the session (the production image ships them in /opt/spark/jars;
elsewhere LAKEHOUSE_SPARK_JARS points spark.jars at local copies). Same contract as the rust engine: same
MERGE clauses (built once in `MergePlan`), same partition replacement, tables readable by delta-rs (no
deletion vectors, no column mapping).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import faults
from lakehouse.errors import (
    CommitConflict,
    LakehouseError,
    TableNotFound,
    VersionNotFound,
    java_class_names,
)
from lakehouse.frames import is_small, one_row
from lakehouse.sql import ident, in_list, qualified
from lakehouse.tables.engine import (
    MergePlan,
    MergeResult,
    OptimizeResult,
    TableEngine,
    VacuumResult,
    relative_to_table,
)

# keep the basic protocol so that delta-rs can read and write every table this engine creates
_TABLE_PROPERTIES = {"delta.enableDeletionVectors": "false"}
MERGE_METRICS = ("numSourceRows", "numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted",
                 "numTargetFilesAdded", "numTargetFilesRemoved")


# Delta's exceptions for a lost commit race (io.delta.exceptions.*)
_CONFLICTS = ("ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
              "ConcurrentTransactionException", "MetadataChangedException", "ProtocolChangedException",
              "ConcurrentWriteException", "ConcurrentModificationException")
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"


class JvmEngine(TableEngine):
    name = "jvm"
    dialect = "spark"

    def translate(self, exc: Exception, path: str) -> LakehouseError | None:
        names = java_class_names(exc)
        conflict = next((n for n in names if n in _CONFLICTS), None)
        if conflict:
            return CommitConflict(path, conflict)
        if any(n in ("DeltaAnalysisException", "AnalysisException") for n in names) and \
                "is not a Delta table" in str(exc):
            return TableNotFound(path)
        return None

    def tag_commits(self, tag: str | None) -> None:
        super().tag_commits(tag)
        if tag:
            self.spark.conf.set(USER_METADATA, tag)
        else:
            self.spark.conf.unset(USER_METADATA)

    def _current(self, path: str) -> int:
        version = self.version(path)
        if version is None:
            raise TableNotFound(path)
        return version

    def _check_version(self, path: str, version: int) -> None:
        latest = self.version(path)
        if latest is None:
            raise TableNotFound(path)
        if not 0 <= version <= latest:
            raise VersionNotFound(path, version, latest)

    def _delta(self, path: str) -> Any:
        from delta.tables import DeltaTable

        return DeltaTable.forPath(self.spark, path)

    def read(self, path: str, version: int | None = None, partitions: dict[str, list[Any]] | None = None
             ) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            self._check_version(path, version)
            reader = reader.option("versionAsOf", version)
        elif not self.exists(path):
            raise TableNotFound(path)
        df = reader.load(path)
        for column, values in (partitions or {}).items():
            df = df.where(F.expr(in_list(qualified("", column), values)))  # Delta prunes files by partition values
        return df

    def _create(self, df: DataFrame, path: str, partition_by: list[str],
                txn: tuple[str, int] | None = None) -> None:
        writer = df.write.format("delta").mode("append")
        if txn:
            writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
        for key, value in _TABLE_PROPERTIES.items():
            writer = writer.option(key, value)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(path)

    def replace_partitions(self, df: DataFrame, path: str, partition_by: list[str],
                           partitions: dict[str, list[Any]]) -> int:
        where = self.partition_predicate(partitions)
        if not self.exists(path):
            self._create(df, path, partition_by)
        else:
            (df.write.format("delta").mode("overwrite").option("replaceWhere", where)
             .option("mergeSchema", "true").save(path))
        return self._current(path)

    def append(self, df: DataFrame, path: str, partition_by: list[str] | None = None,
               txn: tuple[str, int] | None = None) -> int:
        if not self.exists(path):
            self._create(df, path, partition_by or [], txn)
        else:
            writer = df.write.format("delta").mode("append").option("mergeSchema", "true")
            if txn:
                # Delta's idempotent writes: skipped when the table has seen this (app id, version)
                writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
            writer.save(path)
        return self._current(path)

    def merge(self, df: DataFrame, path: str, plan: MergePlan, base_version: int | None = None) -> MergeResult:
        if not self.exists(path) and plan.delete_matched_when:
            return MergeResult()
        if not self.exists(path):
            self._create(df, path, plan.partition_by)
            metrics = self._last_metrics(path)
            rows = int(metrics.get("numOutputRows", 0))
            return MergeResult(source_rows=rows, inserted=rows, files_added=int(metrics.get("numFiles", 0)),
                               version=self.version(path))
        before = self.version(path)
        if base_version is not None and before != base_version:
            # another writer committed since the caller read the table: what it decided may be stale (Delta's
            # own check covers commits from here to this MERGE's commit)
            raise CommitConflict(path, f"the table is at version {before}, the rows were decided at {base_version}")
        total = None
        if not plan.delete_matched_when:
            df = self._aligned(df, path)
            if plan.update_when:
                df, total, writing = self._rows_that_change(df, path, plan)
                if writing == 0:
                    # Delta rewrites every file holding a key-matched row even when no update condition holds:
                    # a MERGE that would change nothing is not run at all (no new version)
                    return MergeResult(source_rows=total, version=before)
        builder = self._delta(path).alias("t").merge(df.alias("s"), plan.condition(self.dialect))
        if plan.evolve_schema:
            builder = builder.withSchemaEvolution()
        if plan.delete_matched_when:
            builder = builder.whenMatchedDelete(condition=plan.delete_matched_when)
        else:
            builder = builder.whenMatchedUpdateAll(condition=plan.update_when)
            builder = builder.whenNotMatchedInsertAll()
        builder.execute()
        after = self.version(path)
        if after == before:
            return MergeResult(source_rows=total if total is not None else df.count(), version=after)
        result = MergeResult.from_metrics(self._last_metrics(path), MERGE_METRICS, after)
        if total is not None:  # rows left out before the MERGE count as unchanged
            result = dataclasses.replace(result, source_rows=total)
        return result

    def upsert(self, changed: DataFrame | None, inserts: DataFrame | None, path: str, plan: MergePlan,
               base_version: int | None) -> MergeResult:
        """Changed rows go through `merge`; new rows, known to match no target row at `base_version`, through an
        insert-only MERGE: Delta runs it as an anti join of the source with the target files its condition can
        reach (the plan's partitions, and by statistics its key range) and rewrites no file. Its read of those
        files is what makes a concurrent commit of the same keys conflict, as the rust engine's marked append
        does; commits before it began are caught by the version check. Few new rows beside changed ones go with
        them in one MERGE instead: a second MERGE's fixed cost (a second or two) is more than it would save."""
        if changed is not None and inserts is not None and is_small(inserts):
            return super().upsert(changed, inserts, path, plan, base_version)
        result = MergeResult(version=base_version)
        if changed is not None:
            result = self.merge(changed, path, plan, base_version)
        if inserts is None:
            return result
        if changed is not None:
            faults.point("silver:between_commits")
        before = self.version(path)
        if before is None:
            return self.merge(inserts, path, plan)
        if result.version is not None and before != result.version:
            raise CommitConflict(path, f"the table is at version {before}, the rows were decided at "
                                       f"{result.version}")
        builder = self._delta(path).alias("t").merge(self._aligned(inserts, path).alias("s"),
                                                     plan.condition(self.dialect))
        if plan.evolve_schema:
            builder = builder.withSchemaEvolution()
        builder.whenNotMatchedInsertAll().execute()
        after = self.version(path)
        if after == before:
            return result
        metrics = self._last_metrics(path)
        return result.plus(inserted=int(metrics.get("numTargetRowsInserted", 0)),
                           files_added=int(metrics.get("numTargetFilesAdded", 0)), version=after)

    def _aligned(self, df: DataFrame, path: str) -> DataFrame:
        """The source with every target column it lacks as a typed null (as the rust engine's MERGE does): a
        batch without an optional or evolved column updates a row to null there instead of failing to
        resolve the column."""
        target = self._delta(path).toDF().schema
        missing = [f for f in target.fields if f.name not in df.columns]
        if not missing:
            return df
        return df.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in missing])

    def _rows_that_change(self, df: DataFrame, path: str, plan: MergePlan) -> tuple[DataFrame, int, int]:
        """(the source rows that insert or update, all source rows, how many of them insert or update): a
        matched row whose update condition is false is left out of the MERGE."""
        target = self.read(path, partitions=plan.partition_values or None).withColumn("_held", F.lit(True))
        joined = df.alias("s").join(target.alias("t"), F.expr(plan.condition()), "left")
        writes = F.expr(f"t._held IS NULL OR ({plan.update_when})")
        counts = one_row(joined.agg(F.count(F.lit(1)).alias("total"), F.count(F.when(writes, 1)).alias("writing")))
        return joined.where(writes).select("s.*"), int(counts["total"]), int(counts["writing"])

    def _last_metrics(self, path: str) -> dict[str, str]:
        return self.history(path, 1)[0].metrics

    def optimize(self, path: str) -> OptimizeResult:
        row = self._delta(path).optimize().executeCompaction().first()
        metrics = row.asDict(recursive=True).get("metrics") or {} if row else {}
        return OptimizeResult(files_added=int(metrics.get("numFilesAdded", 0)),
                              files_removed=int(metrics.get("numFilesRemoved", 0)), version=self.version(path))

    def vacuum(self, path: str, retention_hours: int, dry_run: bool = False) -> VacuumResult:
        """The files deleted (or that would be), from Delta's dry run. The caller has already enforced the
        retention floor (it refuses less than 7 days unless forced); Delta's own check is lifted for this call
        only, and the setting is restored as it was (unset stays unset)."""
        self._delta(path)  # TableNotFound when there is no table
        previous = {name: self.spark.conf.get(name, None) for name in (RETENTION_CHECK, LISTING_PARALLELISM)}
        self.spark.conf.set(RETENTION_CHECK, "false")
        # VACUUM lists the table in as many tasks as this setting says (10,000 by default: minutes of task
        # overhead on a small table); a few per core lists any table
        cores = int(self.spark.sparkContext.defaultParallelism)
        self.spark.conf.set(LISTING_PARALLELISM, str(min(int(previous[LISTING_PARALLELISM] or 10000), 4 * cores)))
        try:
            table = f"delta.{ident(path)}"
            files = [r[0] for r in self.spark.sql(
                f"VACUUM {table} RETAIN {int(retention_hours)} HOURS DRY RUN").collect()]
            if not dry_run and files:
                self.spark.sql(f"VACUUM {table} RETAIN {int(retention_hours)} HOURS").collect()
        finally:
            for name, value in previous.items():
                if value is None:
                    self.spark.conf.unset(name)
                else:
                    self.spark.conf.set(name, value)
        return VacuumResult(sorted(relative_to_table(path, f) for f in files), dry_run)

    def restore(self, path: str, version: int) -> int:
        self._check_version(path, version)
        self._delta(path).restoreToVersion(version)
        return self._current(path)

    def delete(self, path: str, where: str) -> int:
        before = self.version(path)
        self._delta(path).delete(where)
        if self.version(path) == before:
            return 0
        return int(self._last_metrics(path).get("numDeletedRows", 0))
