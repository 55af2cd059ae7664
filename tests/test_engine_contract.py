"""One contract for every table engine: each test runs per engine (the jvm run needs Delta's jars)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import deltalake
import pytest
from chispa import assert_df_equality

from lakehouse.errors import CommitConflict, TableNotFound, VersionNotFound
from lakehouse.tables.engine import MergePlan
from lakehouse.tables.merging import key_range

SCHEMA = "id string, day date, seq int, v string"
D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
NEWER = "s.seq > t.seq AND s.v <> t.v"


def plan(**kw) -> MergePlan:
    return MergePlan(keys=["id"], partition_by=["day"], update_when=NEWER, **kw)


def rows(engine, path, version=None):
    return sorted(tuple(r) for r in engine.read(path, version).select("id", "day", "seq", "v").collect())


def test_merge_creates_inserts_updates_newer_and_ignores_older(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    first = spark.createDataFrame([("a", D1, 1, "x"), ("b", D1, 1, "y")], SCHEMA)
    created = engine.merge(first, path, plan())
    assert (created.inserted, created.source_rows) == (2, 2)
    change = spark.createDataFrame([("a", D1, 2, "x2"), ("b", D1, 0, "old"), ("c", D2, 1, "z")], SCHEMA)
    result = engine.merge(change, path, plan(partition_values={"day": [D1, D2]}))
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    assert rows(engine, path) == [("a", D1, 2, "x2"), ("b", D1, 1, "y"), ("c", D2, 1, "z")]
    assert result.version == engine.version(path) == 1


def test_unchanged_merge_writes_no_new_version(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    df = spark.createDataFrame([("a", D1, 1, "x"), ("b", D2, 1, "y")], SCHEMA)
    engine.merge(df, path, plan())
    before = engine.version(path)
    result = engine.merge(df, path, plan(partition_values={"day": [D1, D2]}))
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 2)
    assert engine.version(path) == before


def test_rows_already_held_are_left_out_of_the_merge(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    first = spark.createDataFrame([("a", D1, 1, "x"), ("b", D1, 1, "y")], SCHEMA)
    engine.merge(first, path, plan())
    hashed = plan(partition_values={"day": [D1]}, content_hash="v")
    before = engine.version(path)
    same = engine.merge_replacing(first, path, hashed)
    assert engine.version(path) == before and (same.source_rows, same.unchanged, same.updated) == (2, 2, 0)
    changed = engine.merge_replacing(spark.createDataFrame([("a", D1, 2, "x"), ("b", D1, 2, "y2")], SCHEMA),
                                     path, hashed)
    assert (changed.source_rows, changed.updated, changed.unchanged) == (2, 1, 1)
    assert rows(engine, path) == [("a", D1, 1, "x"), ("b", D1, 2, "y2")]


def test_merge_partition_predicate_leaves_other_partitions_alone(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame([("a", D1, 1, "x"), ("b", D2, 1, "y")], SCHEMA), path, plan())
    # gold-style recompute of D2 only: 'b' disappears from D2, 'c' arrives; D1 is not touched
    result = engine.merge_replacing(spark.createDataFrame([("c", D2, 1, "z")], SCHEMA), path,
                                    plan(partition_values={"day": [D2]}, replace_scope={"day": [D2]}))
    assert (result.inserted, result.deleted) == (1, 1)
    assert rows(engine, path) == [("a", D1, 1, "x"), ("c", D2, 1, "z")]


def test_merge_replacing_sorts_new_changed_unchanged_and_stale_rows(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame(
        [("a", D1, 1, "x"), ("b", D1, 1, "y"), ("c", D1, 1, "z"), ("z", D2, 1, "other day")], SCHEMA), path, plan())
    # a: unchanged, b: changed and newer, c: gone from the source (stale in scope D1), d: new; D2 is not read
    source = spark.createDataFrame([("a", D1, 1, "x"), ("b", D1, 2, "y2"), ("d", D1, 1, "w")], SCHEMA)
    result = engine.merge_replacing(source, path, plan(partition_values={"day": [D1]}, replace_scope={"day": [D1]},
                                                       content_hash="v"))
    assert (result.source_rows, result.inserted, result.updated, result.deleted, result.unchanged) == (3, 1, 1, 1, 1)
    assert rows(engine, path) == [("a", D1, 1, "x"), ("b", D1, 2, "y2"), ("d", D1, 1, "w"), ("z", D2, 1, "other day")]
    assert result.version == engine.version(path)
    # the same source again: nothing to do, no new version
    again = engine.merge_replacing(source, path, plan(partition_values={"day": [D1]}, replace_scope={"day": [D1]},
                                                      content_hash="v"))
    assert (again.inserted, again.updated, again.deleted, again.unchanged) == (0, 0, 0, 3)
    assert engine.version(path) == result.version


def test_null_keys_match_null_keys_when_the_plan_says_so(spark, engine, tmp_path):
    """A gold table groups a left join's unmatched facts under a null key: recomputing its dates replaces that row,
    it does not add a second one, and the same source again writes no new version."""
    path = str(tmp_path / "t")
    nullable = plan(partition_values={"day": [D1]}, replace_scope={"day": [D1]}, content_hash="v",
                    null_safe_keys=True)
    first = spark.createDataFrame([("a", D1, 1, "x"), (None, D1, 1, "unknown")], SCHEMA)
    engine.merge_replacing(first, path, nullable)
    changed = spark.createDataFrame([("a", D1, 2, "x"), (None, D1, 2, "unknown, more")], SCHEMA)
    result = engine.merge_replacing(changed, path, nullable)
    assert (result.inserted, result.updated, result.deleted, result.unchanged) == (0, 1, 0, 1)
    held = sorted(tuple(r) for r in engine.read(path).select("v", "id", "day", "seq").collect())
    assert held == [("unknown, more", None, D1, 2), ("x", "a", D1, 1)]
    again = engine.merge_replacing(changed, path, nullable)
    assert engine.version(path) == result.version and again.unchanged == 2
    gone = engine.merge_replacing(spark.createDataFrame([("a", D1, 3, "x")], SCHEMA), path, nullable)
    assert gone.deleted == 1 and [r.id for r in engine.read(path).collect()] == ["a"]


@pytest.mark.parametrize("null_safe", [False, True], ids=["keys", "null-safe-keys"])
def test_a_large_snapshot_is_compared_within_the_source_key_range(spark, engine, tmp_path, monkeypatch, null_safe):
    """Of a snapshot too large to compare whole, only rows within the source's key range, or in the replace scope,
    are compared: the MERGE does what comparing every row would (a stale row out of range is still deleted, rows
    out of range and out of scope are kept, a null key still meets a null key)."""
    from lakehouse import frames

    monkeypatch.setattr(frames, "SMALL_FRAME_BYTES", -1)
    path = str(tmp_path / "t")
    held = [("a", D1, 1, "x"), ("b", D1, 1, "y"), ("c", D1, 1, "z"), ("m", D1, 1, "w"), ("q", D1, 1, "gone")]
    engine.merge(spark.createDataFrame(held + ([(None, D1, 1, "n")] if null_safe else []), SCHEMA), path, plan())
    engine.merge(spark.createDataFrame([("y", D1, 1, "later file")], SCHEMA), path,
                 plan(partition_values={"day": [D1]}))
    source = [("b", D1, 2, "y2"), ("c", D1, 1, "z"), ("d", D1, 1, "new")]
    scoped = plan(partition_values={"day": [D1]}, replace_scope={"v": ["gone", "n"]}, content_hash="v",
                  null_safe_keys=null_safe)
    result = engine.merge_replacing(spark.createDataFrame(source + ([(None, D1, 2, "n")] if null_safe else []),
                                                          SCHEMA), path, scoped)
    assert (result.inserted, result.updated, result.deleted, result.unchanged) == (1, 1, 1, 2 if null_safe else 1)
    expected = [("a", D1, 1, "x"), ("b", D1, 2, "y2"), ("c", D1, 1, "z"), ("d", D1, 1, "new"), ("m", D1, 1, "w"),
                ("y", D1, 1, "later file")]
    got = sorted((tuple(r) for r in engine.read(path).select("id", "day", "seq", "v").collect()),
                 key=lambda r: (r[0] is None, r))
    assert got == expected + ([(None, D1, 1, "n")] if null_safe else [])


def scan_rows(df) -> int:
    """The rows `df`'s table scans handed on when it last ran (after file and row-group skipping)."""
    def leaves(node):
        if node.nodeName().startswith("AdaptiveSparkPlan"):
            return leaves(node.executedPlan())
        kids = node.children()
        return [node] if kids.size() == 0 else [leaf for i in range(kids.size()) for leaf in leaves(kids.apply(i))]
    scans = [n for n in leaves(df._jdf.queryExecution().executedPlan()) if n.metrics().get("numOutputRows").isDefined()]
    assert scans
    return sum(n.metrics().get("numOutputRows").get().value() for n in scans)


def beside_yesterday(spark, engine, path):
    """(yesterday's 5,000 rows, today's 10 new keys) in one partition; yesterday's already in the table at `path`."""
    yesterday = spark.range(5000).selectExpr("format_string('T19-%05d', id) AS id", f"DATE'{D1}' AS day",
                                             "1 AS seq", "'from yesterday' AS v")
    engine.replace_partitions(yesterday, path, ["day"], {"day": [D1]})
    today = spark.range(10).selectExpr("format_string('T20-%05d', id) AS id", f"DATE'{D1}' AS day", "2 AS seq",
                                       "'late' AS v")
    return yesterday, today


def test_the_key_range_is_pushed_to_the_scan(spark, engine, tmp_path):
    """Yesterday's partition beside a day of new keys: its rows are not read at all (the engines skip the file
    or its row groups by their statistics), not read and then filtered."""
    from lakehouse.tables.merging import within_reach

    path = str(tmp_path / "t")
    _, today = beside_yesterday(spark, engine, path)
    scoped = plan(partition_values={"day": [D1]}, replace_scope={"v": ["late"]})
    held = engine.read(path, partitions=scoped.partition_values).select("id", "v")
    assert len(held.collect()) == 5000 and scan_rows(held) == 5000
    reached = held.where(within_reach(today, held, scoped)[0])
    assert reached.collect() == [] and scan_rows(reached) == 0


def test_new_rows_beside_a_large_partition_rewrite_no_file_and_read_none_out_of_reach(spark, engine, tmp_path,
                                                                                     monkeypatch):
    """A day of new keys beside yesterday's rows in the same partition: the new rows land in new files, no file is
    rewritten, and the insert does not open yesterday's file (the rust engine appends; delta-spark's insert-only
    MERGE skips it by the source's key range in its condition)."""
    from pathlib import Path

    from lakehouse import frames

    monkeypatch.setattr(frames, "SMALL_FRAME_BYTES", -1)
    path = str(tmp_path / "t")
    yesterday, today = beside_yesterday(spark, engine, path)
    # the merge that decides: every row new, none rewritten
    result = engine.merge_replacing(today, path, plan(partition_values={"day": [D1]}, replace_scope={"v": ["late"]},
                                                      content_hash="v"))
    assert (result.inserted, result.updated, result.deleted) == (10, 0, 0)
    assert engine.read(path).count() == 5010
    # the insert itself, with yesterday's file unreadable: it must not be opened
    engine.replace_partitions(yesterday, path, ["day"], {"day": [D1]})
    held = [Path(u.removeprefix("file://")) for u in deltalake.DeltaTable(path).file_uris()]
    good = [f.read_bytes() for f in held]
    new = plan(partition_values={"day": [D1]})
    new = dataclasses.replace(new, key_range=key_range(today, engine.read(path), new))
    for f in held:
        f.write_bytes(b"not parquet" * 100)
    try:
        inserted = engine.upsert(None, today, path, new, engine.version(path))
    finally:
        for f, data in zip(held, good, strict=True):
            f.write_bytes(data)
    assert inserted.inserted == 10
    assert set(held) < {Path(u.removeprefix("file://")) for u in deltalake.DeltaTable(path).file_uris()}
    assert rows(engine, path)[-10:] == sorted(tuple(r) for r in today.collect())


def test_writers_deciding_on_the_same_snapshot_cannot_both_insert(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame([("a", D1, 1, "x")], SCHEMA), path, plan())
    snapshot = engine.version(path)
    new = spark.createDataFrame([("n", D1, 1, "new")], SCHEMA)
    engine.upsert(None, new, path, plan(partition_values={"day": [D1]}), snapshot)
    # a second writer that also found 'n' absent at `snapshot` must not insert it again: its commit conflicts
    with pytest.raises(CommitConflict):
        engine.upsert(None, new, path, plan(partition_values={"day": [D1]}), snapshot)
    with pytest.raises(CommitConflict):
        engine.merge(new, path, plan(partition_values={"day": [D1]}), snapshot)
    assert rows(engine, path) == [("a", D1, 1, "x"), ("n", D1, 1, "new")]


def test_partition_filtered_read(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame([("a", D1, 1, "x"), ("b", D2, 1, "y"), ("c", D3, 1, "z")], SCHEMA), path,
                 plan())
    assert [r.id for r in engine.read(path, partitions={"day": [D1, D3]}).orderBy("id").collect()] == ["a", "c"]
    assert engine.read(path, partitions={"day": []}).count() == 0
    assert [r.id for r in engine.read(path, partitions={"v": ["y"]}).collect()] == ["b"]  # not a partition column


def test_size_is_the_bytes_a_read_scans(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    assert engine.size(path) == 0  # no table
    df = spark.createDataFrame([(f"k{i}", D1 if i % 3 else D2, i, "v" * 50) for i in range(300)], SCHEMA)
    engine.replace_partitions(df, path, ["day"], {"day": [D1, D2]})
    whole, first, second = engine.size(path), engine.size(path, {"day": [D1]}), engine.size(path, {"day": [D2]})
    assert whole and first and second
    assert first + second == whole  # one file per partition, summed
    assert engine.size(path, {"day": [D3]}) == 0
    assert engine.size(path, {"day": [D1, D2]}) == whole
    assert engine.size(path, {"seq": [1]}) == whole  # not a partition column: the whole table is read


def test_replace_partitions_and_time_travel(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.replace_partitions(spark.createDataFrame([("a", D1, 1, "x"), ("b", D2, 1, "y")], SCHEMA), path,
                              ["day"], {"day": [D1]})
    v1 = engine.replace_partitions(spark.createDataFrame([("a2", D1, 1, "x")], SCHEMA), path, ["day"],
                                   {"day": [D1]})
    assert rows(engine, path) == [("a2", D1, 1, "x"), ("b", D2, 1, "y")]
    assert rows(engine, path, version=0) == [("a", D1, 1, "x"), ("b", D2, 1, "y")]
    assert v1 == 1
    history = engine.history(path)
    assert [(h.version, h.operation) for h in history] == [(1, "WRITE"), (0, "WRITE")]
    assert history[0].timestamp >= history[1].timestamp
    assert abs(history[0].timestamp - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=5)
    assert [h.version for h in engine.history(path, limit=1)] == [1]
    assert [h.tag for h in history] == [None, None]


def test_commits_carry_the_commit_tag(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.tag_commits("run-1")
    try:
        engine.merge(spark.createDataFrame([("a", D1, 1, "x")], SCHEMA), path, plan())
        engine.append(spark.createDataFrame([("b", D2, 1, "y")], SCHEMA), path, ["day"])
        engine.tag_commits("run-2")
        engine.delete(path, "seq = 1 AND id = 'b'")
    finally:
        engine.tag_commits(None)
    engine.append(spark.createDataFrame([("c", D3, 1, "z")], SCHEMA), path, ["day"])  # untagged again
    assert [(h.version, h.tag) for h in engine.history(path)] == [(3, None), (2, "run-2"), (1, "run-1"), (0, "run-1")]


def test_partition_values_with_quotes_and_backslashes(spark, engine, tmp_path):
    """Partition predicates are written for the engine's own SQL parser: a value with a quote or a backslash
    replaces exactly its partition."""
    path = str(tmp_path / "t")
    odd = ["it's", "a\\b", "plain"]
    df = spark.createDataFrame([(v, D1, 1, v) for v in odd], SCHEMA)
    engine.replace_partitions(df, path, ["id"], {"id": odd})
    engine.replace_partitions(spark.createDataFrame([("it's", D1, 2, "new")], SCHEMA), path, ["id"],
                              {"id": ["it's"]})
    engine.replace_partitions(spark.createDataFrame([("a\\b", D1, 2, "new2")], SCHEMA), path, ["id"],
                              {"id": ["a\\b"]})
    assert rows(engine, path) == [("a\\b", D1, 2, "new2"), ("it's", D1, 2, "new"), ("plain", D1, 1, "plain")]
    assert [r.id for r in engine.read(path, partitions={"id": ["it's"]}).collect()] == ["it's"]


def test_missing_tables_and_versions_are_typed_errors(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    with pytest.raises(TableNotFound):
        engine.read(path)
    with pytest.raises(TableNotFound):
        engine.history(path)
    engine.merge(spark.createDataFrame([("a", D1, 1, "x")], SCHEMA), path, plan())
    with pytest.raises(VersionNotFound, match="has no version 7 \\(versions 0..0\\)"):
        engine.read(path, version=7)
    with pytest.raises(VersionNotFound):
        engine.restore(path, 3)
    assert engine.version(path) == 0 and engine.read_or_none(str(tmp_path / "other")) is None


def test_restore_brings_back_an_older_version(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame([("a", D1, 1, "x")], SCHEMA), path, plan())
    engine.merge(spark.createDataFrame([("a", D1, 2, "bad")], SCHEMA), path, plan(partition_values={"day": [D1]}))
    new_version = engine.restore(path, 0)
    assert new_version == 2 and rows(engine, path) == [("a", D1, 1, "x")]


def test_append_with_an_app_transaction_applies_once(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    df = spark.createDataFrame([("a", D1, 1, "x")], SCHEMA)
    engine.append(df, path, ["day"], txn=("run-42", 1))
    engine.append(df, path, ["day"], txn=("run-42", 1))  # a retry of the same write
    engine.append(df, path, ["day"], txn=("run-43", 1))  # another run
    assert len(rows(engine, path)) == 2


@pytest.mark.parametrize("how", ["frame", "records"])
def test_an_app_transaction_of_version_zero_applies_once(spark, engine, tmp_path, how):
    """Version 0 is a version: a retry of a write recorded as version 0 adds nothing."""
    path = str(tmp_path / "t")
    records = [{"id": "a", "day": D1, "seq": 1, "v": "x"}]
    schema = spark.createDataFrame([], SCHEMA).schema
    for txn in [("run-0", 0), ("run-0", 0), ("run-1", 0)]:
        if how == "frame":
            engine.append(spark.createDataFrame([tuple(r.values()) for r in records], schema), path, ["day"],
                          txn=txn)
        else:
            engine.append_rows(records, schema, path, ["day"], txn=txn)
    assert len(rows(engine, path)) == 2
    assert engine.history(path)[0].version == 1  # the retry made no commit


def test_delete_by_condition(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame([("a", D1, 1, "x"), ("b", D2, 1, "y"), ("c", D2, 2, "z")], SCHEMA), path,
                 plan())
    assert engine.delete(path, "day = '2024-01-02' AND seq = 1") == 1
    assert [r[0] for r in rows(engine, path)] == ["a", "c"]
    assert engine.delete(path, "seq > 100") == 0


def test_replace_partitions_adds_new_columns(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.replace_partitions(spark.createDataFrame([("a", D1, 1, "x")], SCHEMA), path, ["day"],
                              {"day": [D1]})
    wider = spark.createDataFrame([("b", D2, 1, "y", "card")], SCHEMA + ", payment string")
    engine.replace_partitions(wider, path, ["day"], {"day": [D2]})
    got = {r.id: r.payment for r in engine.read(path).collect()}
    assert got == {"a": None, "b": "card"}


def test_append_and_empty_source(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.append(spark.createDataFrame([("a", D1, 1, "x")], SCHEMA), path, ["day"])
    engine.append(spark.createDataFrame([("b", D3, 1, "y")], SCHEMA), path, ["day"])
    empty = spark.createDataFrame([], SCHEMA)
    result = engine.merge(empty, path, plan(partition_values={"day": []}))
    assert (result.inserted, result.updated) == (0, 0)
    assert [r[0] for r in rows(engine, path)] == ["a", "b"]


def test_read_keeps_types_and_schema_order(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    df = spark.createDataFrame([("a", D1, 1, "x")], SCHEMA)
    engine.merge(df, path, plan())
    assert_df_equality(engine.read(path), df, ignore_nullable=True)


def test_tables_are_readable_by_delta_rs(spark, engine, tmp_path):
    """Whatever engine wrote the table, delta-rs reads it with the basic protocol (no deletion vectors)."""
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame([("a", D1, 1, "x"), ("b", D2, 1, "y")], SCHEMA), path, plan())
    engine.merge(spark.createDataFrame([("a", D1, 2, "x2")], SCHEMA), path, plan(partition_values={"day": [D1]}))
    table = deltalake.DeltaTable(path)
    assert table.protocol().min_reader_version == 1
    assert sorted(table.to_pyarrow_table().column("v").to_pylist()) == ["x2", "y"]


def test_optimize_and_vacuum(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    for i in range(3):
        engine.append(spark.createDataFrame([(f"k{i}", D1, i, "v")], SCHEMA), path, ["day"])
    before = engine.version(path)
    result = engine.optimize(path)
    assert (result.files_removed, result.files_added, result.version) == (3, 1, before + 1)
    assert len(rows(engine, path)) == 3
    again = engine.optimize(path)  # nothing left to compact
    assert (again.files_removed, again.files_added, again.version) == (0, 0, before + 1)


def test_a_source_without_a_target_column_sets_it_null(spark, engine, tmp_path):
    """A batch that lacks an optional or evolved column (a day before the drift day) updates and inserts rows with
    null there, on every engine, instead of failing to resolve the column."""
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame([("a", D1, 1, "x", "card")], SCHEMA + ", payment string"), path, plan())
    narrow = spark.createDataFrame([("a", D1, 2, "x2"), ("c", D1, 1, "z")], SCHEMA)
    result = engine.merge_replacing(narrow, path, plan(partition_values={"day": [D1]}, content_hash="v"))
    assert (result.inserted, result.updated) == (1, 1)
    got = {r.id: (r.v, r.payment) for r in engine.read(path).collect()}
    assert got == {"a": ("x2", None), "c": ("z", None)}


def test_a_new_source_column_is_added_when_the_plan_evolves_the_schema(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame([("a", D1, 1, "x")], SCHEMA), path, plan())
    wider = spark.createDataFrame([("a", D1, 2, "x2", "cash"), ("b", D2, 1, "y", "card")], SCHEMA + ", payment string")
    result = engine.merge_replacing(wider, path, plan(partition_values={"day": [D1, D2]}, content_hash="v",
                                                      evolve_schema=True))
    assert (result.inserted, result.updated) == (1, 1)
    got = {r.id: (r.v, r.payment) for r in engine.read(path).collect()}
    assert got == {"a": ("x2", "cash"), "b": ("y", "card")}
    # the same rows again: nothing changes, no new version
    before = engine.version(path)
    again = engine.merge_replacing(wider, path, plan(partition_values={"day": [D1, D2]}, content_hash="v",
                                                     evolve_schema=True))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2) and engine.version(path) == before


def test_a_matched_row_whose_update_condition_is_false_writes_nothing(spark, engine, tmp_path):
    """An older row for a held key (the update condition is false) is no change: no new version on any engine,
    although Delta's MERGE would rewrite the file holding the matched row."""
    path = str(tmp_path / "t")
    engine.merge(spark.createDataFrame([("a", D1, 5, "x"), ("b", D1, 5, "y")], SCHEMA), path, plan())
    before = engine.version(path)
    older = spark.createDataFrame([("a", D1, 1, "older")], SCHEMA)
    result = engine.merge(older, path, plan(partition_values={"day": [D1]}))
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 1)
    assert engine.version(path) == before and rows(engine, path) == [("a", D1, 5, "x"), ("b", D1, 5, "y")]


def test_vacuum_reports_the_files_it_deletes(spark, engine, tmp_path):
    path = str(tmp_path / "t")
    for i in range(3):
        engine.append(spark.createDataFrame([(f"k{i}", D1, i, "v")], SCHEMA), path, ["day"])
    engine.optimize(path)
    retention_setting = spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled", None)
    candidates = engine.vacuum(path, retention_hours=0, dry_run=True)
    assert candidates.dry_run and candidates.count == 3
    assert all(f.startswith("day=2024-01-01/") and f.endswith(".parquet") for f in candidates.files)
    assert all((tmp_path / "t" / f).exists() for f in candidates.files)  # a dry run deletes nothing
    deleted = engine.vacuum(path, retention_hours=0)
    assert not deleted.dry_run and deleted.files == candidates.files
    assert not any((tmp_path / "t" / f).exists() for f in deleted.files)
    assert engine.vacuum(path, retention_hours=0).files == []
    assert len(rows(engine, path)) == 3
    # the engine's own retention check is lifted for the call only: the session is left as it was
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled", None) == retention_setting


def test_jvm_engine_selection_is_explicit(spark, tmp_path):
    from lakehouse.settings import SettingsError
    from lakehouse.tables import jvm_delta_available, select_engine
    from lakehouse.tables.paths import LakeLayout

    if jvm_delta_available(spark):  # with Delta's classes, jvm is chosen when asked for, and by auto
        assert select_engine(spark, LakeLayout(str(tmp_path)), "jvm").name == "jvm"
        assert select_engine(spark, LakeLayout(str(tmp_path)), "auto").name == "jvm"
    else:  # without them, asking for jvm says how to get it; auto falls back to the embedded engine
        with pytest.raises(SettingsError, match="LAKEHOUSE_SPARK_JARS"):
            select_engine(spark, LakeLayout(str(tmp_path)), "jvm")
        assert select_engine(spark, LakeLayout(str(tmp_path)), "auto").name == "rust"
    assert select_engine(spark, LakeLayout(str(tmp_path)), "rust").name == "rust"


@pytest.mark.parametrize("staged", [False, True], ids=["in-memory", "staged"])
def test_small_and_large_frames_write_the_same_rows(spark, engine, tmp_path, monkeypatch, staged):
    """The rust engine hands a frame its planner estimates small to delta-rs as Arrow in memory, a larger one
    through staging Parquet; both write the same rows from a frame of several Spark partitions (several Arrow
    batches), with null structs and lists of structs. A small frame with a struct whose fields Spark declares
    non-null takes the staged path too (Arrow refuses the nulls Spark leaves in them)."""
    from lakehouse import frames
    from lakehouse.tables import handoff

    if staged:
        monkeypatch.setattr(frames, "SMALL_FRAME_BYTES", -1)
    in_memory = []
    monkeypatch.setattr(handoff, "InMemory", lambda table, real=handoff.InMemory: in_memory.append(1) or real(table))
    base = spark.range(300).repartition(4).selectExpr(
        "CAST(id AS STRING) AS id", "date_add(DATE'2024-01-01', CAST(id % 2 AS INT)) AS day",
        "CAST(CASE WHEN id % 4 = 0 THEN array(named_struct('column', 'c', 'message', 'bad')) ELSE array() END "
        "AS array<struct<column: string, message: string>>) AS errors",
        "CAST(CASE WHEN id % 6 = 0 THEN NULL ELSE named_struct('a', CAST(id AS STRING)) END AS struct<a: string>) "
        "AS loose",
        "CASE WHEN id % 7 = 0 THEN NULL ELSE repeat('n', CAST(id % 11 AS INT)) END AS note", "id AS n")
    strict = base.selectExpr(  # `cost` is declared non-null inside a nullable struct
        "*", "CASE WHEN n % 3 = 0 THEN NULL ELSE named_struct('cost', CAST(n AS STRING), "
        "'currency', CASE WHEN n % 5 = 0 THEN NULL ELSE 'EUR' END) END AS price")
    for name, df in (("loose", base), ("strict", strict)):
        path = str(tmp_path / name)
        engine.replace_partitions(df, path, ["day"], {"day": [D1, D2]})
        got = engine.read(path).select(*df.columns)
        assert sorted(tuple(r) for r in got.collect()) == sorted(tuple(r) for r in df.collect())
        assert deltalake.DeltaTable(path).to_pyarrow_table().num_rows == 300
    if engine.name == "rust":
        assert len(in_memory) == (0 if staged else 1)  # only the loose frame, only when small
