"""A run killed with SIGKILL at any point heals on the next run: silver and gold end as if it had never been
killed (no duplicate, no lost row, no stale gold date), and the next run's record says what happened.

Each fault point of `lakehouse.faults` is hit (at chosen occurrences) in a real subprocess of the job
(`LAKEHOUSE_KILL_AT`), which must die by the signal there; then the same date is run again (or `--pending`) and the tables are compared with an
uninterrupted run of the same input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import deltalake
import pytest

from lakehouse.faults import POINTS
from lakehouse.pipeline.job import DailyJob
from lakehouse.sample.retail import RetailGenerator
from lakehouse.specs import load_catalog
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import REPO, require_jvm
from tests.test_incremental import mini_conf

pytestmark = pytest.mark.kill
END = dt.date(2024, 8, 2)
DAY1, DAY2 = END - dt.timedelta(days=1), END
TABLES = ["silver/sales", "silver/products", "gold/daily_sales_summary", "bronze/sales", "quarantine/sales"]


def digest(root: Path, name: str) -> str:
    """The table's rows, sorted (run ids and times aside: they say when, not what)."""
    rows = deltalake.DeltaTable(str(root / name)).to_pyarrow_table().to_pylist()
    skip = ("_run_id", "_ingested_at", "run_id", "quarantined_at")
    text = sorted(repr(sorted((k, v) for k, v in r.items() if k not in skip)) for r in rows)
    return hashlib.sha256("\n".join(text).encode()).hexdigest()


def _change_the_raw_zone(root: Path) -> None:
    """After day 1 is loaded: one of its sales disappears from its file (silver must delete it), and day 2's file
    carries a later correction of another (the day-2 load updates silver rows and inserts new ones, so the rust
    engine makes two silver commits)."""
    path = root / f"raw/sales/date={DAY1}/sales.csv"
    raw = path.read_bytes().split(b"\n")
    day1 = [ln.decode("utf-8", "replace") for ln in raw]
    loaded = {r["transaction_id"] for r in deltalake.DeltaTable(str(root / "silver/sales")).to_pyarrow_table(
        columns=["transaction_id"]).to_pylist()}
    ids = [ln.split(",")[0] for ln in day1]
    candidates = [i for i, ln in enumerate(day1) if i > 0 and ids[i] in loaded and ids.count(ids[i]) == 1
                  and ln.count(",") == 7]
    path.write_bytes(b"\n".join(ln for i, ln in enumerate(raw) if i != candidates[0]))
    fields = day1[candidates[1]].split(",")
    fields[4] = "7" if fields[4] != "7" else "8"
    fields[7] = fields[7][:11] + "23:59:59"
    day2 = root / f"raw/sales/date={DAY2}/sales.csv"
    if "payment_method" in day2.read_bytes().split(b"\n", 1)[0].decode():
        fields.append("card")  # the generator's drift day
    with open(day2, "a", encoding="utf-8") as f:
        f.write(",".join(fields) + "\n")


def _restore(snapshot: Path, lake: Path) -> None:
    """Put the lake back as it was at the snapshot, at the same path (lineage and the ingested-file log hold
    absolute paths, so a lake is only itself where it was loaded)."""
    shutil.rmtree(lake, ignore_errors=True)
    shutil.copytree(snapshot, lake, symlinks=True)


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory):
    """A snapshot of a lake with day 1 loaded and its raw zone changed since (the starting point of every killed
    `--pending` run), and the digests of that lake after an uninterrupted `--pending` run."""
    tmp = tmp_path_factory.mktemp("kill")
    conf = mini_conf(tmp)
    lake, snapshot = tmp / "lake", tmp / "snapshot"
    RetailGenerator(lake, days=2, rows_per_day=150, seed=13, end_date=END, products=25, customers=40).write()
    assert not DailyJob(select_engine(spark, LakeLayout(str(lake)), "rust"), load_catalog(conf)).run_day(DAY1).failed
    _change_the_raw_zone(lake)
    shutil.copytree(lake, snapshot, symlinks=True)
    results = DailyJob(select_engine(spark, LakeLayout(str(lake)), "rust"), load_catalog(conf),
                       batch_days=1).run_pending()
    assert [r.run_date for r in results] == [DAY1, DAY2] and not any(r.failed for r in results)
    day1, day2 = (next(o for o in r.datasets if o.dataset == "sales") for r in results)
    assert day1.merge.deleted == 1 and day2.merge.updated >= 1 and day2.merge.inserted > 0
    return conf, lake, snapshot, {t: digest(lake, t) for t in TABLES}


# Where the killed `--pending` run dies: a point and its occurrence, and the run dates per batch. Day by day
# (batch of 1) the run loads day 1 (sales only: its file changed, a row is deleted), then day 2 (products updated;
# sales inserted and updated), each day followed by gold and the run record. As one batch it loads products (day 2),
# then sales (both days, one MERGE), gold once, the records once. The occurrences spread the kills over both
# shapes and every stage.
KILLS = [("dataset:start@1", 1), ("bronze:written@1", 1), ("silver:after_delete@1", 1), ("gold:written@1", 1),
         ("quarantine:written@3", 1), ("silver:written@3", 1), ("meta:before@2", 1),
         ("dataset:start@2", 7), ("bronze:written@2", 7), ("silver:before@2", 7), ("silver:between_commits@1", 7),
         ("silver:written@2", 7), ("ingested:before@2", 7), ("gold:before@1", 7), ("meta:before@1", 7)]


# The production engine killed at the points of its own writes: bronze and quarantine replaced, silver MERGEd
# (in one commit: delta-spark has no between-commits point), a gold table, the run record; day by day and batched.
# The snapshot and the expected tables are the rust engine's: the jvm engine takes the lake over and heals to them.
KILLS_JVM = [("bronze:written@1", 1), ("gold:written@1", 1), ("silver:before@2", 7), ("meta:before@1", 7)]


def test_the_kills_cover_every_point():
    assert {k.split("@")[0] for k, _ in KILLS} == set(POINTS)


@pytest.mark.parametrize(("engine_name", "point", "batch_days"),
                         [("rust", *k) for k in KILLS] + [pytest.param("jvm", *k, marks=pytest.mark.jvm)
                                                          for k in KILLS_JVM])
def test_a_killed_run_heals_on_the_next_run(lakes, spark, engine_name, point, batch_days):
    if engine_name == "jvm":
        require_jvm(spark)
    conf, lake, snapshot, expected = lakes
    _restore(snapshot, lake)
    env = {**os.environ, "LAKEHOUSE_KILL_AT": point, "PYSPARK_PYTHON": sys.executable,
           "LAKEHOUSE_BATCH_DAYS": str(batch_days)}
    env.pop("LAKEHOUSE_ENGINE", None)
    proc = subprocess.run([sys.executable, "-m", "lakehouse.cli", "run", "--pending", "--engine", engine_name,
                           "--lake-root", str(lake), "--conf-dir", str(conf)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert proc.returncode == -signal.SIGKILL, f"{point} was not reached:\n{proc.stdout}\n{proc.stderr[-2000:]}"
    job = DailyJob(select_engine(spark, LakeLayout(str(lake)), engine_name), load_catalog(conf))
    # the next run: the same dates again, or whatever is pending, alternately
    kills = KILLS if engine_name == "rust" else KILLS_JVM
    results = job.run([DAY1, DAY2]) if kills.index((point, batch_days)) % 2 == 0 else job.run_pending()
    assert not any(r.failed for r in results)
    assert {t: digest(lake, t) for t in TABLES} == expected
    if not results:
        # killed after the last day's data and file log were written, before its run record: `--pending` finds
        # nothing left to do (the tables are complete, as checked above)
        assert point.startswith("meta:")
        return
    runs = deltalake.DeltaTable(str(lake / "_meta/runs")).to_pyarrow_table().to_pylist()
    healed = [r for r in runs if r["run_id"] == results[-1].run_id]
    assert healed and all(r["status"] in (("ok",) if r["layer"] == "silver" else ("ok", "skipped"))
                          for r in healed), [(r["name"], r["status"], r["message"]) for r in healed]
    assert all(r["rows_read"] == r["rows_to_silver"] + r["rows_quarantined"] + r["rows_duplicate"]
               + r["rows_held_back"] for r in healed if r["layer"] == "silver")
