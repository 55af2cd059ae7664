"""The two engines share tables: one written by either engine is read, MERGEd, replaced and compacted by the other,
both ways, and each then reads what the other wrote (the lake can move between engines at any version)."""

from __future__ import annotations

import datetime as dt

import deltalake
import pytest

from lakehouse.tables import select_engine
from lakehouse.tables.engine import MergePlan
from lakehouse.tables.paths import LakeLayout
from tests.conftest import require_jvm

pytestmark = pytest.mark.jvm

SCHEMA = "id string, day date, seq int, v string"
D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)


def _rows(engine, path, version=None):
    return sorted(tuple(r) for r in engine.read(path, version).select("id", "day", "seq", "v").collect())


def _plan(**kw) -> MergePlan:
    return MergePlan(keys=["id"], partition_by=["day"], update_when="s.seq > t.seq AND s.v <> t.v", **kw)


@pytest.mark.parametrize("first,second", [("rust", "jvm"), ("jvm", "rust")])
def test_a_table_moves_between_engines_both_ways(spark, tmp_path, first, second):
    require_jvm(spark)
    layout = LakeLayout(str(tmp_path / "lake"))
    a, b = select_engine(spark, layout, first), select_engine(spark, layout, second)
    path = str(tmp_path / "lake" / "t")

    a.merge(spark.createDataFrame([("k1", D1, 1, "x"), ("k2", D1, 1, "y"), ("k3", D2, 1, "z")], SCHEMA), path,
            _plan())
    assert _rows(b, path) == [("k1", D1, 1, "x"), ("k2", D1, 1, "y"), ("k3", D2, 1, "z")]

    # the other engine MERGEs into it: an update, an older row ignored, an insert; a rerun is no new version
    change = spark.createDataFrame([("k1", D1, 2, "x2"), ("k2", D1, 0, "old"), ("k4", D2, 1, "w")], SCHEMA)
    merged = b.merge(change, path, _plan(partition_values={"day": [D1, D2]}))
    assert (merged.inserted, merged.updated) == (1, 1)
    before = a.version(path)
    again = b.merge(change, path, _plan(partition_values={"day": [D1, D2]}))
    assert (again.inserted, again.updated) == (0, 0) and a.version(path) == b.version(path) == before

    # the first engine replaces a partition and deletes by condition over the other's commits
    a.replace_partitions(spark.createDataFrame([("k3", D2, 5, "z5")], SCHEMA), path, ["day"], {"day": [D2]})
    assert b.delete(path, "id = 'k2'") == 1
    expected = [("k1", D1, 2, "x2"), ("k3", D2, 5, "z5")]
    assert _rows(a, path) == _rows(b, path) == expected

    # compaction by the other engine keeps the rows; time travel reads the first engine's versions
    b.optimize(path)
    assert _rows(a, path) == expected
    assert _rows(b, path, version=0) == [("k1", D1, 1, "x"), ("k2", D1, 1, "y"), ("k3", D2, 1, "z")]

    # both stay on the basic protocol delta-rs reads and writes
    table = deltalake.DeltaTable(path)
    assert table.protocol().min_reader_version == 1 and not table.protocol().reader_features
    assert sorted(table.to_pyarrow_table().column("v").to_pylist()) == ["x2", "z5"]
