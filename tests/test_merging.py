"""Which target rows a MERGE's comparison reads (`within_reach`): the source's key range and the replace scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from lakehouse.tables.merging import MergePlan, within_reach

D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)


def reached(spark, source_rows, target_rows, schema, plan):
    source, target = spark.createDataFrame(source_rows, schema), spark.createDataFrame(target_rows, schema)
    reach = within_reach(source, target, plan)
    return None if reach is None else sorted((tuple(r) for r in target.where(reach[0]).collect()), key=str)


def test_rows_within_every_key_range_or_in_scope_are_reached(spark):
    schema = "k string, n int, day date, tag string"
    target = [("a", 5, D1, "keep"), ("b", 1, D1, "keep"), ("b", 9, D1, "keep"), ("c", 5, D1, "keep"),
              ("z", 9, D1, "old"), (None, 5, D1, "keep")]
    source = [("b", 2, D1, "x"), ("c", 6, D1, "x")]
    plan = MergePlan(keys=["k", "n"], partition_values={"day": [D1]}, replace_scope={"tag": ["old"]})
    # k in [b, c] and n in [2, 6], or tagged old: ("b", 1) and ("b", 9) are out of n's range
    assert reached(spark, source, target, schema, plan) == [("c", 5, D1, "keep"), ("z", 9, D1, "old")]
    null_safe = MergePlan(keys=["k"], partition_values={"day": [D1]}, null_safe_keys=True)
    assert reached(spark, source, target, schema, null_safe) == [
        ("b", 1, D1, "keep"), ("b", 9, D1, "keep"), ("c", 5, D1, "keep"), (None, 5, D1, "keep")]


def test_an_empty_or_all_null_source_reaches_only_the_scope(spark):
    schema = "k string, tag string"
    plan = MergePlan(keys=["k"], replace_scope={"tag": ["old"]})
    target = [("a", "keep"), ("b", "old")]
    assert reached(spark, [], target, schema, plan) == [("b", "old")]
    assert reached(spark, [(None, "x")], target, schema, plan) == [("b", "old")]


def test_dates_and_decimals_are_bounded_timestamps_are_not(spark):
    schema = "d date, amount decimal(10,2), at timestamp"
    at = dt.datetime(2024, 1, 1, 12)
    one, two = Decimal("1.00"), Decimal("2.50")
    target = [(D1, one, at), (D2, two, at)]
    source = [(D2, two, at)]
    assert reached(spark, source, target, schema, MergePlan(keys=["d"])) == [(D2, two, at)]
    assert reached(spark, source, target, schema, MergePlan(keys=["amount"])) == [(D2, two, at)]
    assert reached(spark, source, target, schema, MergePlan(keys=["at"])) is None


def test_nothing_to_bound_when_every_row_read_is_in_scope(spark):
    """A gold table's recompute reads the partitions of its dates, all of them in its replace scope."""
    schema = "k string, day date"
    plan = MergePlan(keys=["k"], partition_values={"day": [D1]}, replace_scope={"day": [D1]})
    assert reached(spark, [("a", D1)], [("a", D1), ("b", D1)], schema, plan) is None
