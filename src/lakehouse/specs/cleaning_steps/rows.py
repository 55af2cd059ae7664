"""Cleaning steps on whole rows: duplicates set aside."""

from __future__ import annotations

from functools import reduce

from pydantic import Field
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.specs.base import Spec
from lakehouse.specs.steps import Sample, cleaning_step
from lakehouse.sql import column

SUPERSEDED = "_superseded"


def superseded(df: DataFrame) -> Column:
    """True on a row a dedup step set aside (it is counted as a duplicate, never merged)."""
    return F.coalesce(F.col(SUPERSEDED), F.lit(False)) if SUPERSEDED in df.columns else F.lit(False)


class DedupSpec(Spec):
    columns: list[str] = Field(min_length=1, description="rows with equal values here are duplicates")
    keep_latest_by: str = Field(description="the row with the greatest value is kept (nulls count as oldest)")


@cleaning_step("dedup", argument="`{columns: [...], keep_latest_by: col}`",
               does="rows with equal values in `columns` are duplicates: the one with the greatest `keep_latest_by` "
                    "is kept (a null counts as oldest; ties go to the later raw day, then the later file, then the "
                    "row's content), the others are set aside where the step is written: still checked, counted as "
                    "duplicates in the run record, never merged. Rows with a null in `columns` are nobody's "
                    "duplicate. Independent of `keys`/`duplicates` (below), which `duplicates: fail` is about",
               example="- dedup: {columns: [email], keep_latest_by: updated_at}",
               reads=lambda spec: [*spec.columns, spec.keep_latest_by],
               sample=Sample("email string, updated_at int",
                             [{"email": "a@x.org", "updated_at": 1}, {"email": "a@x.org", "updated_at": 2},
                              {"email": None, "updated_at": 3}, {"email": None, "updated_at": 4}],
                             [{"email": "a@x.org", "updated_at": 1, SUPERSEDED: True},
                              {"email": "a@x.org", "updated_at": 2, SUPERSEDED: False},
                              {"email": None, "updated_at": 3, SUPERSEDED: False},
                              {"email": None, "updated_at": 4, SUPERSEDED: False}]))
def dedup(df: DataFrame, *, dedup: DedupSpec) -> DataFrame:
    """Mark all but the latest row of each group as superseded: such rows are counted as duplicates and never
    merged, but they stay in the batch (accounted for, and still checked).
    Ties on the sequence column go to the later raw day, then the later file, then the content hash, so the
    choice does not depend on the order Spark reads the rows in."""
    business = [column(c) for c in df.columns if not c.startswith("_")]
    order = [superseded(df).asc(), column(dedup.keep_latest_by).desc_nulls_last()]
    order += [F.col(c).desc() for c in ("_partition_date", "_source_file") if c in df.columns]
    order.append(F.xxhash64(*business).desc())
    # within each run date: a batch of several days sets aside what each day's own load would
    by_day = [F.col("_partition_date")] if "_partition_date" in df.columns else []
    window = Window.partitionBy(*by_day, *[column(c) for c in dedup.columns]).orderBy(*order)
    # a row with a null among the columns is nobody's duplicate (as in the unique check)
    complete = reduce(lambda acc, c: acc & column(c).isNotNull(), dedup.columns, F.lit(True))
    return df.withColumn(SUPERSEDED, superseded(df) | (complete & (F.row_number().over(window) > 1)))
