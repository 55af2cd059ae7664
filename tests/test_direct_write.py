"""The rust engine's large writes (tables/direct.py): Spark's executors write the data files into the table's
folder and delta-rs commits them with statistics from the files' footers. The rows are the frame's, delta-rs and
delta-spark read them alike, the statistics are right and let delta-rs skip files, nothing of the write is left
beside the table's files, and a write that dies before its commit leaves the table as it was."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from lakehouse import frames
from lakehouse.tables import direct, select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import require_jvm

D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)


@pytest.fixture
def large(monkeypatch):
    """Every frame counts as large: the write goes through Spark's files, whatever its size."""
    monkeypatch.setattr(frames, "SMALL_FRAME_BYTES", -1)
    calls: list[int] = []
    real = direct.write_files
    monkeypatch.setattr(direct, "write_files", lambda *a: calls.append(1) or real(*a))
    return calls


def _frame(spark, first: int, count: int, day: dt.date):
    return spark.range(first, first + count).repartition(3).selectExpr(
        "CAST(id AS STRING) AS id", f"DATE'{day}' AS day", "CAST(id AS INT) AS n",
        "CASE WHEN id % 5 = 0 THEN NULL ELSE concat('v', CAST(id % 7 AS STRING)) END AS v",
        "CAST(id AS DECIMAL(10,2)) AS amount", "TIMESTAMP'2024-01-01 10:00:00' + make_interval(0,0,0,0,0,0,id) AS at",
        "named_struct('a', CAST(id AS STRING)) AS nested")


def test_spark_files_committed_by_delta_rs(spark, tmp_path, large):
    engine = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")
    path = str(tmp_path / "t")
    first = _frame(spark, 0, 40, D1)
    engine.replace_partitions(first, path, ["day"], {"day": [D1]})  # a new table: delta-rs's writer creates it
    assert large == []
    second = _frame(spark, 100, 300, D2)
    version = engine.replace_partitions(second, path, ["day"], {"day": [D2]})
    replaced = engine.replace_partitions(_frame(spark, 1000, 200, D2), path, ["day"], {"day": [D2]})
    assert len(large) == 2 and (version, replaced) == (1, 2)

    table = DeltaTable(path)
    got = table.to_pyarrow_table()
    assert got.num_rows == 240
    assert sorted(got.filter(pc.field("day") == D2)["n"].to_pylist()) == list(range(1000, 1200))
    assert sorted(r.n for r in engine.read(path).collect()) == list(range(40)) + list(range(1000, 1200))
    # only data files and the log beside each other: no Spark folder, checksum or marker left
    left = sorted(str(p.relative_to(path)) for p in Path(path).rglob("*") if p.is_file() and "_delta_log" not in p.parts)
    assert all(p.startswith("day=") and p.endswith(".parquet") and "/." not in p for p in left), left
    assert not [p for p in Path(path).iterdir() if p.name.startswith("w-")]

    adds = [a for a in pa.table(table.get_add_actions(flatten=True)).to_pylist() if a["partition.day"] == D2]
    assert sum(a["num_records"] for a in adds) == 200 and len(adds) == 3
    for add in adds:
        held = _ns(table, add["path"])
        assert (add["min.n"], add["max.n"]) == (min(held), max(held)) and min(held) >= 1000 and max(held) < 1200
        assert add["null_count.v"] == sum(1 for x in held if x % 5 == 0)
        assert add["min.v"].startswith("v") and add["null_count.amount"] == 0
    # the statistics let delta-rs skip files: a value above one file's range leaves that file out
    top = max(a["min.n"] for a in adds)
    fragments = list(table.to_pyarrow_dataset().get_fragments(filter=pc.field("n") >= top))
    assert len(fragments) < len(table.file_uris())


def _ns(table: DeltaTable, path: str) -> set[int]:
    import pyarrow.parquet as pq

    return set(pq.read_table(os.path.join(table.table_uri.removeprefix("file://"), path))["n"].to_pylist())


def test_a_write_that_dies_before_its_commit_changes_nothing(spark, tmp_path, large, monkeypatch):
    engine = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")
    path = str(tmp_path / "t")
    engine.replace_partitions(_frame(spark, 0, 40, D1), path, ["day"], {"day": [D1]})

    def die(*args, **kwargs):
        raise OSError("the process died here")

    monkeypatch.setattr(direct, "commit", die)
    with pytest.raises(OSError):
        engine.replace_partitions(_frame(spark, 500, 50, D1), path, ["day"], {"day": [D1]})
    table = DeltaTable(path)
    assert table.version() == 0 and sorted(table.to_pyarrow_table()["n"].to_pylist()) == list(range(40))
    monkeypatch.undo()
    monkeypatch.setattr(frames, "SMALL_FRAME_BYTES", -1)
    engine.vacuum(path, retention_hours=0, dry_run=False)  # the orphans go as any writer's leftovers
    files = {p.name for p in Path(path).rglob("*.parquet")}
    assert files == {Path(u).name for u in DeltaTable(path).file_uris()}


def test_appended_inserts_and_delta_spark_reads_them(spark, tmp_path, large):
    """Silver's new rows (a MERGE's inserts) go the same way; delta-spark reads the table with the same rows."""
    from lakehouse.tables.engine import MergePlan

    rust = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")
    path = str(tmp_path / "t")
    plan = MergePlan(keys=["id"], partition_by=["day"], content_hash="n")  # n stands for the content hash
    rust.merge_replacing(_frame(spark, 0, 40, D1), path, plan)
    result = rust.merge_replacing(_frame(spark, 20, 100, D1), path, plan)
    assert large and (result.inserted, result.unchanged) == (80, 20)
    rows = sorted(r.n for r in rust.read(path).collect())
    assert rows == list(range(120))
    if os.environ.get("LAKEHOUSE_SPARK_JARS") or os.environ.get("LAKEHOUSE_REQUIRE_JVM") == "1":
        require_jvm(spark)
        jvm = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "jvm")
        assert sorted(r.n for r in jvm.read(path).collect()) == rows
        log = [json.loads(line) for f in sorted(Path(path, "_delta_log").glob("*.json")) for line in f.open()]
        assert any("add" in entry and json.loads(entry["add"]["stats"])["numRecords"] for entry in log)


def test_a_replaced_partition_that_adds_a_column_is_one_commit_of_spark_files(spark, tmp_path, large):
    """Bronze's day with a new raw column: Spark's files, one commit that also records the merged schema (the new
    column after the table's), earlier rows null in it; delta-spark (where present) reads the same table, and its
    own partition replace with schema merging gives the same columns in the same order."""
    from pyspark.sql import functions as F

    rust = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")
    path = str(tmp_path / "t")
    rust.replace_partitions(_frame(spark, 0, 40, D1), path, ["day"], {"day": [D1]})
    wider = _frame(spark, 100, 60, D2).withColumn("extra", F.concat(F.lit("x"), F.col("id")))
    version = rust.replace_partitions(wider, path, ["day"], {"day": [D2]})
    assert len(large) == 1 and version == 1  # Spark's files, one commit
    table = DeltaTable(path)
    names = [f.name for f in table.schema().fields]
    assert names == ["id", "day", "n", "v", "amount", "at", "nested", "extra"]
    log = [json.loads(line) for line in Path(path, "_delta_log", f"{1:020d}.json").read_text().splitlines()]
    assert any("metaData" in entry for entry in log) and sum("add" in entry for entry in log) == 3
    rows = sorted((r.n, r.extra) for r in rust.read(path).collect())
    assert rows == [(n, None) for n in range(40)] + [(n, f"x{n}") for n in range(100, 160)]
    # the partition of the wider day replaced again, narrower: a table's columns are never dropped
    assert rust.replace_partitions(_frame(spark, 200, 30, D2), path, ["day"], {"day": [D2]}) == 2
    assert [f.name for f in DeltaTable(path).schema().fields] == names
    if os.environ.get("LAKEHOUSE_SPARK_JARS") or os.environ.get("LAKEHOUSE_REQUIRE_JVM") == "1":
        require_jvm(spark)
        jvm = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "jvm")
        assert sorted((r.n, r.extra) for r in jvm.read(path).collect()) == \
            sorted((r.n, r.extra) for r in rust.read(path).collect())
        twin = str(tmp_path / "twin")
        jvm.replace_partitions(_frame(spark, 0, 40, D1), twin, ["day"], {"day": [D1]})
        jvm.replace_partitions(wider, twin, ["day"], {"day": [D2]})
        assert [f.name for f in DeltaTable(twin).schema().fields] == names


def test_a_row_outside_the_one_partition_replaced_fails_the_write(spark, tmp_path, large):
    """One partition replaced is written as that partition's folder (no sort by the partition column): a row of
    another partition in the frame fails the write, which leaves the table as it was, instead of landing in the
    wrong folder."""
    from pyspark.sql.utils import CapturedException

    rust = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")
    path = str(tmp_path / "t")
    rust.replace_partitions(_frame(spark, 0, 40, D1), path, ["day"], {"day": [D1]})
    mixed = _frame(spark, 100, 50, D2).unionByName(_frame(spark, 500, 1, D1))
    with pytest.raises(CapturedException, match="outside the partition"):
        rust.replace_partitions(mixed, path, ["day"], {"day": [D2]})
    table = DeltaTable(path)
    assert table.version() == 0 and sorted(table.to_pyarrow_table()["n"].to_pylist()) == list(range(40))
    assert rust.replace_partitions(_frame(spark, 100, 50, D2), path, ["day"], {"day": [D2]}) == 1
    adds = pa.table(DeltaTable(path).get_add_actions(flatten=True)).to_pylist()
    assert {a["partition.day"] for a in adds} == {D1, D2} and all("/day=" not in a["path"][4:] for a in adds)
