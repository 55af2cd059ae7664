"""Quarantine: the rows of a batch that failed an error-level check, with their reasons, the cleaned record and the
raw line; a rerun of the run date replaces that date's partition."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.rules.checks import ERRORS, has_error
from lakehouse.rules.failures import ERROR_TYPE
from lakehouse.sources.columns import RAW_RECORD
from lakehouse.specs import models as m
from lakehouse.sql import column
from lakehouse.tables.engine import TableEngine

# one row per quarantined raw row: what failed (errors), the cleaned record as JSON and the raw line
SCHEMA = T.StructType([
    T.StructField("dataset", T.StringType(), False),
    T.StructField("run_id", T.StringType(), False),
    T.StructField("run_date", T.DateType(), False),
    T.StructField("source_file", T.StringType()),
    T.StructField("record", T.StringType()),
    T.StructField("raw_record", T.StringType()),
    T.StructField("errors", ERROR_TYPE),
    T.StructField("quarantined_at", T.TimestampType()),
    T.StructField("_partition_date", T.DateType()),
])

# an unparseable line cannot be masked column by column; when a dataset masks data, quarantine keeps only this
WITHHELD = "<withheld: the dataset masks sensitive columns; the raw line is in bronze>"


# what a quarantine row says; the run that wrote it and when are left out, so a rerun's rows compare equal
CONTENT = ["dataset", "run_date", "source_file", "record", "raw_record", "errors", "_partition_date"]


def _content(df: DataFrame) -> dict[dt.date, tuple[int, int]]:
    """Run date -> (rows, sum of row hashes): equal for two sets of rows with the same content, in one
    aggregation."""
    return {r["d"]: (int(r["n"]), int(r["h"])) for r in df.groupBy(F.col("_partition_date").alias("d")).agg(
        F.count(F.lit(1)).alias("n"),
        F.coalesce(F.sum(F.xxhash64(*[F.col(c) for c in CONTENT]).cast("decimal(38,0)")), F.lit(0)).alias("h"),
    ).collect()}


def write_quarantine(engine: TableEngine, spec: m.DatasetSpec, run_ids: dict[dt.date, str], checked: DataFrame,
                     quarantined: dict[dt.date, int]) -> list[dt.date]:
    """Replace each run date's quarantine partition with its checked rows that have an error (`quarantined`, as
    measured), in one commit. A partition that holds these rows already (a rerun, a refresh) is left as it is:
    when all are, there is no new table version. Returns the run dates written."""
    record_cols = [c for c in checked.columns if not c.startswith("_")]
    run_id = F.element_at(F.create_map(*[F.lit(x) for d, r in sorted(run_ids.items()) for x in (d, r)]),
                          F.col("_partition_date"))
    rows = checked.where(has_error()).select(
        F.lit(spec.name).alias("dataset"),
        run_id.alias("run_id"),
        F.col("_partition_date").alias("run_date"),
        F.col("_source_file").alias("source_file"),
        F.to_json(F.struct(*[column(c) for c in record_cols])).alias("record"),
        (F.when(F.col(RAW_RECORD).isNotNull(), F.lit(WITHHELD)) if spec.has_masking()
         else F.col(RAW_RECORD)).alias("raw_record"),
        F.col(ERRORS).alias("errors"),
        F.col("_ingested_at").alias("quarantined_at"),
        F.col("_partition_date"),
    ).select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in SCHEMA.fields])
    path = engine.layout.quarantine(spec.name)
    days = sorted(run_ids)
    if engine.exists(path):
        held = _content(engine.read(path, partitions={"_partition_date": days}))
        differ = [d for d in days if held.get(d, (0, 0))[0] != quarantined.get(d, 0)]
        same_count = [d for d in days if d not in differ and quarantined.get(d, 0)]
        if same_count:  # same number of rows: compare the content
            new = _content(rows.where(F.col("_partition_date").isin(same_count)))
            differ += [d for d in same_count if new.get(d) != held.get(d)]
        days = sorted(differ)
        if not days:
            return []
        rows = rows.where(F.col("_partition_date").isin(days))
    engine.replace_partitions(rows, path, ["_partition_date"], {"_partition_date": days})
    return days
