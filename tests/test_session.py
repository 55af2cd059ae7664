"""The session's scoped settings: small inputs run interpreted and planned once, and the session's own settings
come back."""

from __future__ import annotations

import pytest

from lakehouse.errors import SettingsError
from lakehouse.session import SMALL_INPUT_BYTES, evaluation_for, small_input_bytes, working
from tests.conftest import require_jvm

WHOLE_STAGE = "spark.sql.codegen.wholeStage"
FACTORY = "spark.sql.codegen.factoryMode"


def generates_code(spark) -> bool:
    """Whether a query runs through whole-stage generated code (its stages print as `*(n)` in the plan)."""
    df = spark.range(100).selectExpr("id * 2 AS x").where("x > 10")
    assert df.count() == 94
    return "*(" in df._jdf.queryExecution().executedPlan().toString()


def test_small_input_runs_interpreted_and_the_settings_come_back(spark):
    keys = (WHOLE_STAGE, FACTORY, "spark.sql.adaptive.enabled", "spark.sql.shuffle.partitions")
    before = {k: spark.conf.get(k, None) for k in keys}
    assert generates_code(spark)
    with evaluation_for(spark, 1000) as interpreted:
        assert interpreted
        assert spark.conf.get(FACTORY) == "NO_CODEGEN"
        assert spark.conf.get("spark.sql.adaptive.enabled") == "false"
        assert int(spark.conf.get("spark.sql.shuffle.partitions")) <= spark.sparkContext.defaultParallelism
        assert not generates_code(spark)
    assert {k: spark.conf.get(k, None) for k in keys} == before
    assert generates_code(spark)


def test_large_or_unknown_input_keeps_generated_code(spark):
    for size in (SMALL_INPUT_BYTES + 1, None):
        with evaluation_for(spark, size) as interpreted:
            assert not interpreted
            assert generates_code(spark)


def test_a_setting_of_the_session_is_restored(spark):
    spark.conf.set(WHOLE_STAGE, "false")
    try:
        with evaluation_for(spark, 10):
            assert spark.conf.get(WHOLE_STAGE) == "false"
        assert spark.conf.get(WHOLE_STAGE) == "false"
        with pytest.raises(RuntimeError), evaluation_for(spark, 10):
            raise RuntimeError("a failing stage")
        assert spark.conf.get(WHOLE_STAGE) == "false"
        assert spark.conf.get(FACTORY, None) != "NO_CODEGEN"
    finally:
        spark.conf.unset(WHOLE_STAGE)


def test_the_limit_comes_from_the_environment(monkeypatch, spark):
    monkeypatch.setenv("LAKEHOUSE_SMALL_INPUT_BYTES", "0")
    assert small_input_bytes() == 0
    with evaluation_for(spark, 0) as interpreted:
        assert not interpreted  # 0: never
    monkeypatch.setenv("LAKEHOUSE_SMALL_INPUT_BYTES", "2048")
    with evaluation_for(spark, 4096) as interpreted:
        assert not interpreted
    with evaluation_for(spark, 2048) as interpreted:
        assert interpreted
    for bad in ("lots", "-1", "1.5"):
        monkeypatch.setenv("LAKEHOUSE_SMALL_INPUT_BYTES", bad)
        with pytest.raises(SettingsError, match="LAKEHOUSE_SMALL_INPUT_BYTES"):
            small_input_bytes()


def test_blocks_in_several_threads_leave_the_session_as_it_was(spark):
    """Two jobs on one session (a notebook, the concurrent-writer tests) interleave their blocks: the settings
    come back once the last block ends, whatever the order."""
    import threading

    before = spark.conf.get(FACTORY, None)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with evaluation_for(spark, 10):
            first_in.set()
            second_in.wait(30)
        first_out.set()

    def second():
        first_in.wait(30)
        with evaluation_for(spark, 10):
            second_in.set()
            first_out.wait(30)
            seen.append(spark.conf.get(FACTORY))  # after the other block ended

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert first_out.is_set() and seen == ["NO_CODEGEN"]  # the first block's end did not switch it back
    assert spark.conf.get(FACTORY, None) == before
    assert generates_code(spark)


def test_a_second_run_on_the_session_never_sees_the_settings_change_under_it(spark):
    """Two runs at once on one session (`working`): the second starts only once the first's small block has
    ended, and while both work neither takes the small path, so no query of either sees the settings switch."""
    import threading

    before = spark.conf.get(FACTORY, None)
    in_block, second_started, release, first_done = (threading.Event() for _ in range(4))
    seen: dict[str, object] = {}

    def first():
        with working(spark):
            with evaluation_for(spark, 10) as small:
                seen["first small"] = small
                in_block.set()
                release.wait(30)
                seen["second started while the block was open"] = second_started.is_set()
            second_started.wait(30)
            with evaluation_for(spark, 10) as small:  # the second works now too: no switch
                seen["first again"] = small
                seen["factory while both work"] = spark.conf.get(FACTORY, None)
            first_done.set()

    def second():
        in_block.wait(30)
        with working(spark):
            second_started.set()
            with evaluation_for(spark, 10) as small:
                seen["second small"] = small
            first_done.wait(30)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    in_block.wait(30)
    assert not second_started.wait(1)  # held at the door while the first's small block is open
    release.set()
    for t in threads:
        t.join(60)
    assert seen == {"first small": True, "second started while the block was open": False, "first again": False,
                    "factory while both work": before, "second small": False}
    with working(spark), evaluation_for(spark, 10) as small:
        assert small  # alone again: the small path is back
    assert spark.conf.get(FACTORY, None) == before


def test_delta_replays_a_log_over_as_many_tasks_as_the_session_has_cores(spark, tmp_path):
    """delta-spark's default, 50 tasks per log replay, cost about a second per write on two cores."""
    require_jvm(spark)
    path = str(tmp_path / "t")
    spark.range(10).write.format("delta").save(path)
    spark.range(10, 20).write.format("delta").mode("append").save(path)
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("replay", "a log replayed from a fresh DeltaLog")
    try:
        spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
        assert spark.read.format("delta").load(path).count() == 20
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    stages = [s for j in tracker.getJobIdsForGroup("replay") for s in (tracker.getJobInfo(j).stageIds or [])]
    tasks = [info.numTasks for info in map(tracker.getStageInfo, stages) if info is not None]
    assert tasks and max(tasks) <= spark.sparkContext.defaultParallelism, tasks
