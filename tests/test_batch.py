"""Several run dates in one batch load exactly what loading them one after the other loads (tables, per-day counts
and verdicts); and a rerun that would change nothing skips the work but still reports the day."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from urllib.parse import unquote

import deltalake
import pytest
import yaml

from lakehouse.pipeline.job import DailyJob
from lakehouse.sample.retail import RetailGenerator
from lakehouse.sources.files import partition_folder
from lakehouse.specs import load_catalog
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import CONF
from tests.test_idempotency import content
from tests.test_incremental import mini_conf

pytestmark = pytest.mark.e2e
END = dt.date(2024, 9, 5)
DAYS = [END - dt.timedelta(days=3 - i) for i in range(4)]  # the third one is the sample's drift day
TABLES = [f"{layer}/{name}" for layer in ("bronze", "quarantine", "silver") for name in ("sales", "products", "inventory")] \
    + ["gold/daily_sales_summary", "gold/daily_inventory_movement"]
COUNTS = ("status", "rows_read", "rows_quarantined", "rows_duplicate", "rows_held_back", "rows_to_silver",
          "rows_warned", "rows_malformed", "files_read", "files_rejected")


def three_datasets(tmp: Path) -> Path:
    """sales, products, inventory and both gold tables."""
    conf = mini_conf(tmp)
    shutil.copy(CONF / "datasets" / "inventory.yaml", conf / "datasets")
    shutil.copy(CONF / "aggregations" / "daily_inventory_movement.yaml", conf / "aggregations")
    return conf


def raw_files(root: Path, conf: Path, dataset: str, day: dt.date) -> list[Path]:
    layout = yaml.safe_load((CONF / "datasets" / f"{dataset}.yaml").read_text())["source"]["layout"]
    return sorted((root / "raw" / dataset / partition_folder(layout, day)).iterdir())


def keep_lines(f: Path, n: int) -> None:
    f.write_bytes(b"".join(f.read_bytes().splitlines(keepends=True)[:n]))


def hostile_conf(tmp: Path) -> Path:
    """The sample's specs, plus rules whose scope is the batch: within a day a key may occur once (`unique`), a
    dedup step keeps the latest row of each id, inventory rows must name a store seen in the same day's batch, and
    a row-count check fails the smallest day."""
    conf = three_datasets(tmp)
    sales = conf / "datasets" / "sales.yaml"
    spec = yaml.safe_load(sales.read_text())
    spec["checks"].append({"check": "unique", "columns": ["transaction_id", "store_id"], "criticality": "warn"})
    spec["cleaning"].append({"dedup": {"columns": ["transaction_id"], "keep_latest_by": "transaction_timestamp"}})
    sales.write_text(yaml.safe_dump(spec, sort_keys=False))
    inventory = conf / "datasets" / "inventory.yaml"
    spec = yaml.safe_load(inventory.read_text())
    spec["checks"].append({"check": "exists_in", "column": "product_id", "ref": "batch.product_id",
                           "criticality": "warn", "name": "seen_today"})
    spec.setdefault("dataset_checks", []).append({"check": "row_count_change", "max_change": 0.5, "action": "warn"})
    inventory.write_text(yaml.safe_dump(spec, sort_keys=False))
    return conf


def lake(tmp: Path, conf: Path) -> Path:
    root = tmp / "lake"
    RetailGenerator(root, days=len(DAYS), rows_per_day=150, seed=7, end_date=END, products=25, customers=30).write()
    # one day's inventory file is tiny: its row_count_change check differs from its neighbours'
    for f in raw_files(root, conf, "inventory", DAYS[1]):
        keep_lines(f, 6)
    return root


def per_day(root: Path) -> dict[tuple[str, str], dict]:
    rows = deltalake.DeltaTable(str(root / "_meta" / "runs")).to_pyarrow_table().to_pylist()
    return {(str(r["run_date"]), r["name"]): {k: r[k] for k in COUNTS} for r in rows if r["layer"] == "silver"}


def quality(root: Path) -> list[tuple]:
    rows = deltalake.DeltaTable(str(root / "_meta" / "quality")).to_pyarrow_table().to_pylist()
    return sorted((str(r["run_date"]), r["dataset"], r["check"], r["column"] or "", r["failed_rows"], r["status"])
                  for r in rows)


@pytest.fixture(scope="module")
def loaded(spark, tmp_path_factory):
    """The same raw zone loaded as one batch and day by day."""
    out = {}
    for mode, batch_days in (("batch", 7), ("daily", 1)):
        tmp = tmp_path_factory.mktemp(mode)
        conf = hostile_conf(tmp)
        root = lake(tmp, conf)
        job = DailyJob(select_engine(spark, LakeLayout(str(root)), "rust"), load_catalog(str(conf)),
                       batch_days=batch_days)
        results = job.run_pending()
        out[mode] = (root, results, job)
    return out


def test_a_batch_of_days_loads_what_the_days_one_by_one_load(loaded):
    batch, daily = loaded["batch"], loaded["daily"]
    assert [r.run_date for r in batch[1]] == [r.run_date for r in daily[1]] == DAYS
    assert len({r.run_id for r in batch[1]}) == len(DAYS)  # each run date keeps its own run id
    for name in TABLES:
        assert content(batch[0], name) == content(daily[0], name), name
    # the same counts and verdicts per run date and dataset, every raw row accounted for
    assert per_day(batch[0]) == per_day(daily[0])
    assert quality(batch[0]) == quality(daily[0])
    for result in batch[1]:
        for o in result.datasets:
            assert o.accounted(), (o.dataset, o.run_date)
    # the rules scoped to the batch really fired (the comparison above is not between two empty sets)
    failed = {(q[1], q[2]) for q in quality(batch[0]) if q[4]}
    assert ("inventory", "row_count_change") in failed and ("inventory", "seen_today") in {
        (q[1], q[2]) for q in quality(batch[0])}
    dedup = {k: v for k, v in per_day(batch[0]).items() if k[1] == "sales"}
    assert sum(v["rows_duplicate"] for v in dedup.values()) > 0


def test_a_batch_writes_each_table_once(loaded):
    """One commit per table for the whole batch (the first load creates each table in that commit)."""
    root = loaded["batch"][0]
    for name in ("bronze/sales", "quarantine/sales", "silver/sales", "gold/daily_sales_summary", "_meta/runs"):
        assert deltalake.DeltaTable(str(root / name)).version() == 0, name
    daily = loaded["daily"][0]
    assert deltalake.DeltaTable(str(daily / "silver" / "sales")).version() == len(DAYS) - 1


def test_a_failing_day_in_a_batch_is_held_back_alone(spark, tmp_path):
    """A dataset check that fails one day holds back that day's rows only; the batch's other days merge."""
    conf = three_datasets(tmp_path)
    sales = conf / "datasets" / "sales.yaml"
    spec = yaml.safe_load(sales.read_text())
    spec["dataset_checks"].append({"check": "row_count", "min": 100, "action": "fail", "name": "enough_rows"})
    sales.write_text(yaml.safe_dump(spec, sort_keys=False))
    root = lake(tmp_path, conf)
    for f in raw_files(root, conf, "sales", DAYS[2]):
        keep_lines(f, 20)
    job = DailyJob(select_engine(spark, LakeLayout(str(root)), "rust"), load_catalog(str(conf)))
    results = job.run_pending()
    sales_days = {r.run_date: next(o for o in r.datasets if o.dataset == "sales") for r in results}
    assert sales_days[DAYS[2]].status == "failed" and "enough_rows" in sales_days[DAYS[2]].message
    assert sales_days[DAYS[2]].rows_held_back > 0 and sales_days[DAYS[2]].rows_to_silver == 0
    assert all(o.status == "ok" and o.rows_to_silver > 0 for d, o in sales_days.items() if d != DAYS[2])
    silver = deltalake.DeltaTable(str(root / "silver" / "sales")).to_pyarrow_table().to_pylist()
    assert {r["_source_date"] for r in silver} == set(DAYS) - {DAYS[2]}
    # and its raw files are not logged as ingested: the next pending run tries the day again
    assert job.run_pending()[0].run_date == DAYS[2]


def versions(root: Path) -> dict[str, int]:
    return {n: deltalake.DeltaTable(str(root / n)).version() for n in TABLES}


def test_a_rerun_that_would_change_nothing_skips_the_work(spark, tmp_path):
    conf = three_datasets(tmp_path)
    root = lake(tmp_path, conf)
    engine = select_engine(spark, LakeLayout(str(root)), "rust")
    job = DailyJob(engine, load_catalog(str(conf)))
    first = job.run([DAYS[-1]])[0]
    before = versions(root)
    again = job.run([DAYS[-1]])[0]
    assert not again.failed
    assert versions(root) == before  # not one commit to any table
    reused = {o.dataset: o for o in again.datasets}
    for o in first.datasets:
        r = reused[o.dataset]
        assert r.unchanged_since == first.run_id, o.dataset
        assert (r.status, r.rows_read, r.rows_quarantined, r.rows_duplicate, r.rows_to_silver) == \
            (o.status, o.rows_read, o.rows_quarantined, o.rows_duplicate, o.rows_to_silver)
        assert r.accounted() and not r.affected_dates and "check" not in r.timings
        assert sorted((q.check, q.column or "", q.failed_rows) for q in r.quality) == \
            sorted((q.check, q.column or "", q.failed_rows) for q in o.quality)
    # the run records say so too
    runs = deltalake.DeltaTable(str(root / "_meta" / "runs")).to_pyarrow_table().to_pylist()
    assert {r["message"] for r in runs if r["run_id"] == again.run_id and r["layer"] == "silver"} == {
        f"unchanged since run {first.run_id}: files, rules and tables as that load left them"}

    # another commit to a table the checks read (products' silver): what reads it is checked again
    product = deltalake.DeltaTable(str(root / "silver" / "products")).to_pyarrow_table().column("product_id")[0]
    engine.delete(str(root / "silver" / "products"), f"product_id = '{product.as_py()}'")
    third = {o.dataset: o for o in job.run([DAYS[-1]])[0].datasets}
    assert all(third[name].unchanged_since is None for name in ("products", "sales", "inventory"))
    assert product.as_py() in deltalake.DeltaTable(str(root / "silver" / "products")).to_pyarrow_table().column(
        "product_id").to_pylist()  # the day's file put it back
    # ... and after that load, a rerun has nothing to do again
    assert all(o.unchanged_since for o in job.run([DAYS[-1]])[0].datasets)

    # a changed rule: that dataset is checked again, and the change shows
    spec_path = conf / "datasets" / "inventory.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["checks"].append({"check": "range", "column": "quantity_change", "max": -100000, "criticality": "warn",
                           "name": "never_true"})
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    fourth = {o.dataset: o for o in DailyJob(engine, load_catalog(str(conf))).run([DAYS[-1]])[0].datasets}
    assert fourth["inventory"].unchanged_since is None and fourth["sales"].unchanged_since is not None
    assert any(q.check == "never_true" and q.failed_rows > 0 for q in fourth["inventory"].quality)


def test_a_check_relative_to_the_time_of_the_run_is_judged_again(spark, tmp_path):
    """`not_older_than` may fail tomorrow what passed today: judged again. `not_in_future` only loosens with time:
    a load where it failed nothing stands."""
    conf = three_datasets(tmp_path)
    for name, check in (("products", {"check": "not_older_than", "column": "last_updated", "days": 36500}),
                        ("inventory", {"check": "not_in_future", "column": "update_timestamp"})):
        spec_path = conf / "datasets" / f"{name}.yaml"
        spec = yaml.safe_load(spec_path.read_text())
        spec.setdefault("checks", []).append(check)
        spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    root = lake(tmp_path, conf)
    job = DailyJob(select_engine(spark, LakeLayout(str(root)), "rust"), load_catalog(str(conf)))
    job.run([DAYS[-1]])
    again = {o.dataset: o for o in job.run([DAYS[-1]])[0].datasets}
    assert again["products"].unchanged_since is None
    # products was checked again and changed nothing: what reads it stands too
    assert again["inventory"].unchanged_since is not None and again["sales"].unchanged_since is not None


def test_rerun_after_a_file_changes_loads_it(spark, tmp_path):
    conf = mini_conf(tmp_path)
    root = lake(tmp_path, conf)
    job = DailyJob(select_engine(spark, LakeLayout(str(root)), "rust"), load_catalog(str(conf)))
    job.run([DAYS[-1]])
    f = raw_files(root, conf, "sales", DAYS[-1])[0]
    lines = f.read_bytes().splitlines(keepends=True)
    keep_lines(f, len(lines) - 3)
    sales = next(o for o in job.run([DAYS[-1]])[0].datasets if o.dataset == "sales")
    assert sales.unchanged_since is None and not sales.bronze_reused
    assert sales.rows_read == len(lines) - 4  # the header and the three dropped lines


def events_conf(tmp: Path) -> Path:
    """One CSV dataset, no gold."""
    conf = tmp / "conf"
    (conf / "datasets").mkdir(parents=True)
    (conf / "aggregations").mkdir()
    (conf / "datasets" / "events.yaml").write_text(yaml.safe_dump({
        "name": "events", "source": {"format": "csv", "path": "raw/events"},
        "schema": {"event_id": "string not null", "v": "int"}, "keys": ["event_id"]}))
    return conf


ODD_NAMES = ["a b.csv", "per%cent 20%.csv", "plus+hash#.csv", "ünï çødé.csv", "brackets[1]{2}.csv", "star*q?.csv",
             "back\\slash.csv", "x;y=z,w.csv"]


def test_a_batch_scan_gives_each_row_its_own_files_run_date(spark, tmp_path):
    """The files of a batch's days are read by one scan per file shape, each row taking its file's run date and
    run id: whatever the file names, every row lands in its own day's bronze partition with that day's run id."""
    conf = events_conf(tmp_path)
    root = tmp_path / "lake"
    days = [dt.date(2024, 3, 1) + dt.timedelta(days=i) for i in range(3)]
    expected = {}
    for i, day in enumerate(days):
        folder = root / "raw" / "events" / f"date={day}"
        folder.mkdir(parents=True)
        for j, name in enumerate(ODD_NAMES[i:] + ODD_NAMES[:i]):
            ids = [f"{day}-{j}-{k}" for k in range(3)]
            (folder / name).write_text("event_id,v\n" + "".join(f"{e},{k}\n" for k, e in enumerate(ids)))
            expected.update({e: day for e in ids})
    results = DailyJob(select_engine(spark, LakeLayout(str(root)), "rust"), load_catalog(str(conf))).run(days)
    run_ids = {r.run_date: r.run_id for r in results}
    assert [o.status for r in results for o in r.datasets] == ["ok"] * 3
    table = deltalake.DeltaTable(str(root / "bronze" / "events"))
    assert table.version() == 0  # one commit: the batch's scan did not fall back to loading day by day
    bronze = table.to_pyarrow_table().to_pylist()
    assert {r["event_id"]: r["_partition_date"] for r in bronze} == expected
    assert len(bronze) == len(expected) == 3 * 3 * len(ODD_NAMES)
    assert all(r["_run_id"] == run_ids[r["_partition_date"]] for r in bronze)
    # the lineage column holds each file's URI (percent-encoded, as Spark reports it)
    assert {Path(unquote(r["_source_file"])).name for r in bronze} == set(ODD_NAMES)


def test_a_row_whose_file_the_batch_scan_cannot_place_fails_the_scan_not_the_row(spark, tmp_path, monkeypatch):
    """Should a file's path as Spark reports it ever differ from the one the batch scan looks its run date up by,
    the scan fails (no row goes without its run date) and the days are loaded one by one."""
    from lakehouse.sources import reader

    conf = events_conf(tmp_path)
    root = tmp_path / "lake"
    days = [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]
    for day in days:
        folder = root / "raw" / "events" / f"date={day}"
        folder.mkdir(parents=True)
        (folder / "e.csv").write_text(f"event_id,v\n{day}-a,1\n{day}-b,2\n")
    real = reader._spark_path
    monkeypatch.setattr(reader, "_spark_path", lambda spark, path: real(spark, path) + ".elsewhere")
    results = DailyJob(select_engine(spark, LakeLayout(str(root)), "rust"), load_catalog(str(conf))).run(days)
    assert [o.status for r in results for o in r.datasets] == ["ok", "ok"]
    table = deltalake.DeltaTable(str(root / "bronze" / "events"))
    assert table.version() == 1  # day by day: one commit each
    assert sorted((r["event_id"], r["_partition_date"]) for r in table.to_pyarrow_table().to_pylist()) == [
        (f"{d}-{k}", d) for d in days for k in "ab"]
