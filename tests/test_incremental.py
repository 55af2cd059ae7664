"""Incremental and idempotent loads: --pending, changed and deleted raw files, full refresh, schema drift,
concurrent runs, and a dataset defined in YAML only."""

from __future__ import annotations

import collections
import datetime as dt
import os
import shutil
import textwrap
import threading
from pathlib import Path

import deltalake
import pytest

from lakehouse.pipeline.job import DailyJob
from lakehouse.sample.retail import RetailGenerator
from lakehouse.specs import load_catalog
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import CONF
from tests.lake_rows import table_versions

END = dt.date(2024, 6, 3)
DAYS = [END - dt.timedelta(days=1), END]


def mini_conf(tmp_path: Path) -> Path:
    """sales + products and the sales summary: enough for every behaviour, half the Spark work."""
    conf = tmp_path / "conf"
    (conf / "datasets").mkdir(parents=True)
    (conf / "aggregations").mkdir()
    for name in ("sales", "products"):
        shutil.copy(CONF / "datasets" / f"{name}.yaml", conf / "datasets")
    shutil.copy(CONF / "aggregations" / "daily_sales_summary.yaml", conf / "aggregations")
    return conf


def table(root: Path, name: str) -> list[dict]:
    return deltalake.DeltaTable(str(root / name)).to_pyarrow_table().to_pylist()


def version(root: Path, name: str) -> int:
    return deltalake.DeltaTable(str(root / name)).version()


@pytest.fixture
def lake(spark, tmp_path):
    root = tmp_path / "lake"
    RetailGenerator(root, days=2, rows_per_day=120, seed=11, end_date=END, products=30, customers=40).write()
    engine = select_engine(spark, LakeLayout(str(root)), "rust")
    return root, DailyJob(engine, load_catalog(mini_conf(tmp_path))), tmp_path


def test_pending_loads_new_then_only_changed_files(lake):
    root, job, _ = lake
    first = job.run_pending()
    assert [r.run_date for r in first] == DAYS and not any(r.failed for r in first)
    assert job.run_pending() == []  # nothing new: no run at all
    sales_file = root / f"raw/sales/date={END}/sales.csv"
    lines = sales_file.read_bytes().split(b"\n")
    header, removed, edited = lines[0], lines[1], lines[2].split(b",")
    edited[4] = b"999"  # quantity
    sales_file.write_bytes(b"\n".join([header, b",".join(edited), *lines[3:]]))
    silver_before = {r["transaction_id"]: r for r in table(root, "silver/sales")}
    gold_version = version(root, "gold/daily_sales_summary")
    results = job.run_pending()
    assert [(r.run_date, [o.dataset for o in r.datasets]) for r in results] == [(END, ["sales"])]
    silver = {r["transaction_id"]: r for r in table(root, "silver/sales")}
    removed_id, edited_id = removed.split(b",")[0].decode(), edited[0].decode()
    assert removed_id in silver_before and removed_id not in silver  # a row gone from the file leaves silver
    assert silver[edited_id]["quantity"] == 999
    assert {k: v for k, v in silver.items() if k != edited_id} == \
        {k: v for k, v in silver_before.items() if k not in (removed_id, edited_id)}
    assert version(root, "gold/daily_sales_summary") > gold_version
    category = {p["product_id"]: p["category"] for p in table(root, "silver/products")}
    expected: dict = collections.Counter()
    for r in silver.values():
        if r["transaction_date"] == END:
            expected[(r["store_id"], category[r["product_id"]])] += r["quantity"]
    gold = {(g["store_id"], g["category"]): g["units_sold"] for g in table(root, "gold/daily_sales_summary")
            if g["transaction_date"] == END}
    assert gold == dict(expected)  # groups that lost their last row are gone, the rest recomputed


def test_deleted_raw_file_is_reported_not_ignored(lake):
    root, job, _ = lake
    job.run_pending()
    silver_rows = len(table(root, "silver/products"))
    gone = root / f"raw/products/date={DAYS[1]}/products.json"
    gone.unlink()
    results = job.run_pending()
    assert any("deleted upstream" in n and str(gone) in n for r in results for n in r.notes)
    log = [r for r in table(root, "_meta/ingested_files") if r["path"] == str(gone)]
    assert sorted(r["status"] for r in log) == ["deleted", "ingested"]
    assert len(table(root, "silver/products")) == silver_rows
    assert job.run_pending() == []  # reported once


def test_full_refresh_rebuilds_silver_and_gold_from_bronze_only(lake):
    root, job, _ = lake
    job.run(DAYS)
    silver = sorted(r["transaction_id"] for r in table(root, "silver/sales"))
    gold = sorted((str(g["transaction_date"]), g["store_id"], g["category"], g["revenue"])
                  for g in table(root, "gold/daily_sales_summary"))
    bronze_version = version(root, "bronze/sales")
    job.engine.delete(str(root / "silver/sales"), "store_id = 'STORE_001'")  # damage silver
    shutil.rmtree(root / "raw")  # full refresh must not need the raw files
    results = job.full_refresh(None)
    assert not any(r.failed for r in results)
    assert sorted(r["transaction_id"] for r in table(root, "silver/sales")) == silver
    assert sorted((str(g["transaction_date"]), g["store_id"], g["category"], g["revenue"])
                  for g in table(root, "gold/daily_sales_summary")) == gold
    assert version(root, "bronze/sales") == bronze_version


def _write_drift_conf(tmp_path: Path, mode: str) -> Path:
    conf = mini_conf(tmp_path / mode)
    path = conf / "datasets" / "sales.yaml"
    path.write_text(path.read_text().replace("on_new_columns: add", f"on_new_columns: {mode}"))
    return conf


def test_schema_drift_fail_stops_the_dataset_and_names_the_columns(lake, spark):
    root, job, tmp_path = lake
    job.run([DAYS[0]])
    # the generator puts an extra payment_method column on the middle day of its range (here: the second)
    strict = DailyJob(job.engine, load_catalog(_write_drift_conf(tmp_path, "fail")))
    silver_version = version(root, "silver/sales")
    result = strict.run_day(DAYS[1])
    sales = next(o for o in result.datasets if o.dataset == "sales")
    assert result.failed and sales.status == "failed" and "payment_method" in sales.message
    assert version(root, "silver/sales") == silver_version
    assert sales.rows_held_back == sales.rows_read - sales.rows_quarantined and sales.accounted()


def test_schema_drift_add_evolves_silver(lake):
    root, job, _ = lake
    job.run(DAYS)
    rows = table(root, "silver/sales")
    assert {r["payment_method"] for r in rows if r["_source_date"] == DAYS[1]} >= {"card", "cash"}
    assert {r["payment_method"] for r in rows if r["_source_date"] == DAYS[0]} == {None}


def test_two_concurrent_runs_of_one_date_never_duplicate(lake):
    root, job, _ = lake
    job.run([DAYS[0]])
    results, errors = [], []

    def run():
        try:
            results.append(job.run_day(DAYS[1]))
        except Exception as exc:  # the job itself must not raise
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], [str(e)[:3000] for e in errors]
    for r in results:
        for o in r.datasets:
            assert o.status == "ok" or "concurrent writer" in o.message, o.message
    ids = [r["transaction_id"] for r in table(root, "silver/sales")]
    assert len(ids) == len(set(ids))
    expected = DailyJob(job.engine, job.catalog).run_day(DAYS[1])  # a third, sequential run changes nothing
    assert all(o.merge is None or (o.merge.inserted, o.merge.updated, o.merge.deleted) == (0, 0, 0)
               for o in expected.datasets)


def run_with_raw_csv(spark, tmp_path, conf, folder: str, text: str):
    """Write one raw CSV file under lake/raw/<folder> and run the job for 2024-06-03 with the specs in `conf`."""
    raw = tmp_path / "lake/raw" / folder
    raw.mkdir(parents=True)
    (raw / "part-1.csv").write_text(text)
    engine = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")
    return DailyJob(engine, load_catalog(conf)).run_day(dt.date(2024, 6, 3))


def test_a_dataset_in_yaml_only(spark, tmp_path, monkeypatch):
    """A new source with only documented checks and steps: no Python change."""
    conf = tmp_path / "conf"
    (conf / "datasets").mkdir(parents=True)
    (conf / "aggregations").mkdir()
    (conf / "datasets" / "returns.yaml").write_text(textwrap.dedent("""\
        name: returns
        source: {format: csv, path: raw/returns, layout: "year={yyyy}/month={mm}/day={dd}"}
        schema: {Return ID: string not null, Amount: string, Reason: string, Card: string, Returned: string}
        keys: [return_id]
        duplicates: keep_latest
        cleaning:
          - standardize_column_names: true
          - mask_card: [card]
          - parse_dates: {returned: {type: date, formats: ["dd/MM/yyyy", "yyyy-MM-dd"]}}
          - title: [reason]
        checks:
          - {check: castable, column: amount, type: "decimal(8,2)"}
          - {check: range, column: amount, min: 0, inclusive: false}
          - {check: not_null, column: returned, name: returned_date}
          - {check: in_set, column: reason, values: [Damaged, Wrong Size, Other], criticality: warn}
        dataset_checks:
          - {check: uniqueness, columns: [return_id], min: 0.5, action: warn}
          - {check: statistic, column: amount, stat: max, max: 1000, action: fail}
          - {check: required_columns, columns: [Return ID, Amount], action: fail}
        """).replace("{Return ID: string not null, Amount: string, Reason: string, Card: string, Returned: string}",
                     "{return_id: string not null, amount: string, reason: string, card: string, returned: string}"))
    (conf / "aggregations" / "daily_returns.yaml").write_text(textwrap.dedent("""\
        name: daily_returns
        from: returns
        date_column: returned
        group_by: [returned, reason]
        measures: {returns: count(*), refunded: sum(amount)}
        """))
    result = run_with_raw_csv(spark, tmp_path, conf, "returns/year=2024/month=06/day=03",
        "Return ID,Amount,Reason,Card,Returned\n"
        "R1,19.99,damaged,4111 1111 1111 1234,03/06/2024\n"
        "R2,-5,other,,2024-06-03\n"
        "R3,abc,wrong size,5500-0000-0000-0004,03/06/2024\n"
        "R4,7.50,lost,,not a date\n"
        "R1,19.99,damaged,4111 1111 1111 1234,03/06/2024\n")
    returns = result.datasets[0]
    assert not result.failed, returns.message
    assert (returns.rows_read, returns.rows_to_silver, returns.rows_quarantined, returns.rows_duplicate) == \
        (5, 1, 3, 1)
    silver = table(tmp_path / "lake", "silver/returns")
    assert [(r["return_id"], r["card"], str(r["amount"]), r["reason"]) for r in silver] == \
        [("R1", "************1234", "19.99", "Damaged")]
    assert silver[0]["returned"] == dt.date(2024, 6, 3)
    reasons = collections.Counter(e["check"] for r in table(tmp_path / "lake", "quarantine/returns")
                                  for e in r["errors"])
    assert reasons == {"range": 1, "castable": 1, "returned_date": 1, "in_set": 1}  # warn travels along
    quarantined_cards = [r["record"] for r in table(tmp_path / "lake", "quarantine/returns")]
    assert not any("5500-0000-0000-0004" in r for r in quarantined_cards)  # masked before quarantine
    gold = table(tmp_path / "lake", "gold/daily_returns")
    assert [(g["reason"], g["returns"]) for g in gold] == [("Damaged", 1)]
    # the same batch under `duplicates: fail`: the dataset fails, naming the colliding key, and merges nothing
    spec = conf / "datasets" / "returns.yaml"
    spec.write_text(spec.read_text().replace("duplicates: keep_latest", "duplicates: fail"))
    silver_version = version(tmp_path / "lake", "silver/returns")
    engine = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")
    # on the small path (checked rows cached) and the large one (checked rows in staging Parquet)
    for small_input_bytes in ("", "0"):
        monkeypatch.setenv("LAKEHOUSE_SMALL_INPUT_BYTES", small_input_bytes)
        strict = DailyJob(engine, load_catalog(conf)).run_day(dt.date(2024, 6, 3))
        outcome = strict.datasets[0]
        assert strict.failed and "duplicate" in outcome.message and "'return_id': 'R1'" in outcome.message
        assert version(tmp_path / "lake", "silver/returns") == silver_version and outcome.accounted()


def test_dedup_cleaning_step_keeps_the_latest_and_accounts_for_the_rest(spark, tmp_path):
    conf = tmp_path / "conf"
    (conf / "datasets").mkdir(parents=True)
    (conf / "datasets" / "signups.yaml").write_text(textwrap.dedent("""\
        name: signups
        source: {format: csv, path: raw/signups}
        schema: {signup_id: string not null, email: string, updated_at: timestamp}
        keys: [signup_id]
        duplicates: fail
        cleaning:
          - lower: [email]
          - dedup: {columns: [email], keep_latest_by: updated_at}
        checks:
          - {check: email, column: email}
        """))
    result = run_with_raw_csv(spark, tmp_path, conf, "signups/date=2024-06-03",
        "signup_id,email,updated_at\n"
        "s1,Ann@Example.com,2024-06-03 08:00:00\n"
        "s2,ann@example.com,2024-06-03 09:00:00\n"
        "s3,bob@example.com,\n"
        "s4,bob@example.com,2024-06-03 07:00:00\n"
        "s5,,2024-06-03 07:00:00\n"
        "s6,,2024-06-03 07:30:00\n"
        "s7,not-an-email,2024-06-03 07:00:00\n")
    signups = result.datasets[0]
    # s1 (older, same email after lower) and s3 (null time counts as oldest) are superseded; rows with no email
    # are nobody's duplicate; `duplicates: fail` is about keys, so the dedup step does not fail the dataset
    assert not result.failed, signups.message
    assert (signups.rows_read, signups.rows_to_silver, signups.rows_quarantined, signups.rows_duplicate) == \
        (7, 4, 1, 2)
    assert signups.accounted()
    assert sorted(r["signup_id"] for r in table(tmp_path / "lake", "silver/signups")) == ["s2", "s4", "s5", "s6"]


def test_partition_folders_that_are_not_dates_are_named_not_skipped(lake, capsys):
    """`date=2024-06-31` and `date=yesterday` have the layout's shape but no date: each pending run and plan
    names them, the run record lists them, and their files are not read."""
    from lakehouse.cli import main

    root, job, tmp = lake
    for folder in ("date=2024-06-31", "date=yesterday"):
        (root / "raw/sales" / folder).mkdir()
        shutil.copy(root / f"raw/sales/date={END}/sales.csv", root / "raw/sales" / folder)
    (root / "raw/sales/notes.txt").write_text("not a partition")  # not the layout's shape: not named
    results = job.run_pending()
    assert [r.run_date for r in results] == DAYS and not any(r.failed for r in results)
    bad = sorted(f"{root}/raw/sales/{f}" for f in ("date=2024-06-31", "date=yesterday"))
    notes = [n for r in results for n in r.notes if "invalid partition folder" in n]
    assert sorted(n.rsplit(" ", 1)[-1] for n in notes) == bad, notes
    assert "not a date: date=2024-06-31" in " ".join(notes)
    (record,) = [r for r in table(root, "_meta/runs") if r["layer"] == "raw"]
    assert (record["name"], record["status"], record["run_date"]) == ("sales", "warn", DAYS[0])
    assert sorted(f.split(" (")[0] for f in record["invalid_folders"]) == bad
    assert {r["_source_date"] for r in table(root, "silver/sales")} == set(DAYS)  # nothing read from them
    again = job.run_pending()  # nothing to load, still named
    assert not any(r.datasets for r in again) and len([n for r in again for n in r.notes]) == 2
    args = ["--lake-root", str(root), "--conf-dir", str(tmp / "conf"), "--engine", "rust"]
    assert main(["plan", "--pending", *args]) == 0
    out = capsys.readouterr().out
    assert all(f"invalid partition folder, not read (not a date: date={f.split('=')[1]}): sales {f}" in out
               for f in bad), out
    assert main(["run", "--pending", *args]) == 0
    out = capsys.readouterr().out
    assert "nothing pending" in out and out.count("invalid partition folder") == 2, out


def _rewrite_keeping_size_and_time(path: Path, old: bytes, new: bytes) -> None:
    st = path.stat()
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) >= 1
    path.write_bytes(data.replace(old, new, 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_a_file_rewritten_with_the_same_size_and_time_is_loaded_again(lake):
    root, job, _ = lake
    job.run_pending()
    path = root / f"raw/sales/date={END}/sales.csv"
    header, first = path.read_bytes().split(b"\n")[:2]
    cells = first.split(b",")
    column = header.split(b",").index(b"quantity")
    old = cells[column]
    new = b"9" * len(old) if old != b"9" * len(old) else b"8" * len(old)
    cells[column] = new
    _rewrite_keeping_size_and_time(path, first, b",".join(cells))
    results = job.run_pending()
    assert [(r.run_date, [o.dataset for o in r.datasets]) for r in results] == [(END, ["sales"])]
    silver = {r["transaction_id"]: r for r in table(root, "silver/sales")}
    assert silver[cells[0].decode()]["quantity"] == int(new)


def _data_versions(root: Path) -> dict[str, int]:
    return {t: v for t, v in table_versions(root).items() if not t.startswith("_meta/")}


def test_a_copied_raw_zone_is_not_loaded_again(lake):
    """Every file of a copied raw zone has a new inode and change time (and `cp -p` keeps the times): the digest
    recorded when each was read finds the bytes the same, so nothing is pending and no table changes."""
    root, job, _ = lake
    job.run_pending()
    before = _data_versions(root)
    shutil.copytree(root / "raw", root / "raw-copy", copy_function=shutil.copy2)
    shutil.rmtree(root / "raw")
    (root / "raw-copy").rename(root / "raw")
    again = job.run_pending()
    assert not any(r.datasets for r in again)
    assert _data_versions(root) == before
    path = root / f"raw/sales/date={END}/sales.csv"
    header, first = path.read_bytes().split(b"\n")[:2]
    cells = first.split(b",")
    column = header.split(b",").index(b"quantity")
    cells[column] = b"9" * len(cells[column]) if cells[column] != b"9" * len(cells[column]) else b"8" * len(cells[column])
    _rewrite_keeping_size_and_time(path, first, b",".join(cells))  # a copy is still read again when it differs
    assert [(r.run_date, [o.dataset for o in r.datasets]) for r in job.run_pending()] == [(END, ["sales"])]


def test_reload_reads_a_date_again(lake, tmp_path):
    """`run --date D --reload`: unchanged files write no new version of any table; a row deleted from silver by
    hand comes back from bronze (not parsed again); a changed file read again lands exactly its change."""
    from lakehouse.cli import main

    root, job, tmp = lake
    job.run_pending()
    args = ["--lake-root", str(root), "--conf-dir", str(tmp / "conf"), "--engine", "rust"]
    before = _data_versions(root)
    assert len(before) >= 7 and any(t.startswith("bronze/") for t in before)
    assert main(["run", "--date", str(END), "--reload", *args]) == 0
    assert _data_versions(root) == before
    assert main(["run", "--date", str(END), "--reload", "nope", *args]) == 2
    silver_before = {r["transaction_id"]: r for r in table(root, "silver/sales")}
    gone = sorted(k for k, r in silver_before.items() if r["_source_date"] == END)[0]
    deltalake.DeltaTable(str(root / "silver/sales")).delete(f"transaction_id = '{gone}'")
    assert main(["run", "--date", str(END), "--reload", "sales", *args]) == 0
    assert {r["transaction_id"]: r for r in table(root, "silver/sales")}.keys() == silver_before.keys()
    assert version(root, "bronze/sales") == before["bronze/sales"]  # rebuilt from bronze, not read again
    path = root / f"raw/sales/date={END}/sales.csv"
    lines = path.read_text(encoding="latin-1").splitlines()
    cells = lines[1].split(",")
    cells[4] = "777"  # quantity
    path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n", encoding="latin-1")
    assert main(["run", "--date", str(END), "--reload", "sales", *args]) == 0
    silver = {r["transaction_id"]: r for r in table(root, "silver/sales")}
    assert silver[cells[0]]["quantity"] == 777
    assert {k: v for k, v in silver.items() if k != cells[0]} == \
        {k: v for k, v in silver_before.items() if k != cells[0]}
    assert version(root, "silver/products") == before["silver/products"]


def test_the_logs_every_run_reads_are_compacted_and_keep_their_rows(spark, tmp_path, engine, monkeypatch):
    """A run that leaves a `_meta` log read by every run with more data files than LAKEHOUSE_LOG_MAX_FILES
    compacts it: one commit, the same rows, and the next --pending finds the same (nothing) to do."""
    monkeypatch.setenv("LAKEHOUSE_LOG_MAX_FILES", "1")
    root = tmp_path / "lake"
    RetailGenerator(root, days=2, rows_per_day=40, seed=3, end_date=END, products=10, customers=10).write()
    job = DailyJob(engine, load_catalog(mini_conf(tmp_path)), batch_days=1)
    assert [r.failed for r in job.run_pending()] == [False, False]
    for name in ("ingested_files", "gold_pending", "gold_inputs"):
        log = deltalake.DeltaTable(str(root / "_meta" / name))
        (last,) = log.history(1)
        assert last["operation"] == "OPTIMIZE", name
        assert len(log.file_uris()) == 1, name
        before = deltalake.DeltaTable(str(root / "_meta" / name), version=log.version() - 1)
        assert len(before.file_uris()) > 1, name  # there was something to compact
        key = sorted(log.schema().to_arrow().names)
        assert sorted(map(str, log.to_pyarrow_table().select(key).to_pylist())) == \
            sorted(map(str, before.to_pyarrow_table().select(key).to_pylist())), name
    versions = table_versions(root)
    assert job.run_pending() == []
    assert table_versions(root) == versions  # nothing pending: no table gets a new version
