"""End to end: generated raw data -> the daily job -> Delta tables, checked with delta-rs and plain Python."""

from __future__ import annotations

import collections
import datetime as dt
from decimal import Decimal
from pathlib import Path

import deltalake
import pytest

from lakehouse.pipeline.job import DailyJob
from lakehouse.sample.retail import RetailGenerator
from lakehouse.specs import load_catalog
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import CONF

pytestmark = pytest.mark.e2e
END = dt.date(2024, 3, 5)
DAYS = [END - dt.timedelta(days=2), END - dt.timedelta(days=1), END]


def table(root: Path, name: str) -> list[dict]:
    return deltalake.DeltaTable(str(root / name)).to_pyarrow_table().to_pylist()


def versions(root: Path, names: list[str]) -> dict[str, int]:
    return {n: deltalake.DeltaTable(str(root / n)).version() for n in names}


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    RetailGenerator(root, days=3, rows_per_day=300, seed=7, end_date=END, products=60, customers=200).write()
    engine = select_engine(spark, LakeLayout(str(root)), "rust")
    job = DailyJob(engine, load_catalog(CONF))
    results = [job.run([day])[0] for day in DAYS]  # three nightly runs (a batch of days: tests/test_batch.py)
    return root, job, results


def test_every_table_is_a_delta_table_with_rows(lake):
    root, _, results = lake
    assert not any(r.failed for r in results), [(o.dataset, o.message) for r in results for o in r.datasets]
    for layer in ("bronze", "silver", "quarantine"):
        for ds in ("sales", "products", "customers", "inventory", "campaigns"):
            deltalake.DeltaTable(str(root / layer / ds))
    assert len(table(root, "gold/daily_sales_summary")) > 0
    assert len(table(root, "gold/daily_inventory_movement")) > 0
    assert len(table(root, "_meta/runs")) == 3 * (5 + 2)


HISTORY = {"products": "product_id", "customers": "customer_id"}  # the sample's datasets with history (key)


def test_row_accounting_holds_in_every_run_record(lake):
    root, _, _ = lake
    for r in table(root, "_meta/runs"):
        if r["layer"] != "silver":
            continue
        assert r["rows_read"] == (r["rows_to_silver"] + r["rows_quarantined"] + r["rows_duplicate"]
                                  + r["rows_held_back"]), r
        if r["name"] in HISTORY:
            continue  # a history table's MERGE counts versions: earlier ones whose interval it closes too
        assert r["rows_to_silver"] == r["rows_inserted"] + r["rows_updated"] + r["rows_unchanged"], r
    for name in HISTORY:  # each key's versions follow each other: one current, each ending where the next starts
        versions = collections.defaultdict(list)
        for v in sorted(table(root, f"silver/{name}"), key=lambda v: v["valid_from"]):
            versions[v[HISTORY[name]]].append(v)
        for held in versions.values():
            assert [v["is_current"] for v in held] == [False] * (len(held) - 1) + [True]
            assert [v["valid_to"] for v in held] == [v["valid_from"] for v in held[1:]] + [None]
    assert any(len(held) > 1 for held in versions.values())  # the sample's dimensions do change
    bronze = collections.Counter(str(r["_partition_date"]) for r in table(root, "bronze/sales"))
    runs = {str(r["run_date"]): r["rows_read"] for r in table(root, "_meta/runs") if r["name"] == "sales"}
    assert dict(bronze) == runs  # every raw line of sales reached bronze and was counted


def test_silver_has_one_row_per_key_and_the_latest_version(lake):
    root, _, _ = lake
    silver = table(root, "silver/sales")
    ids = [r["transaction_id"] for r in silver]
    assert len(ids) == len(set(ids))
    # the generator writes corrections: same id, 5 minutes later, quantity + 1; silver keeps the correction
    raw_lines = []
    for day in DAYS:
        raw_lines += (root / f"raw/sales/date={day}/sales.csv").read_bytes().decode("utf-8", "replace").splitlines()[1:]
    seen: dict[str, list[str]] = collections.defaultdict(list)
    for line in raw_lines:
        seen[line.split(",")[0]].append(line)
    corrected = {k: v for k, v in seen.items() if len(v) == 2}
    assert corrected, "the sample data should contain corrections"
    by_id = {r["transaction_id"]: r for r in silver}
    for txn, (_, later) in corrected.items():
        if txn in by_id:
            assert by_id[txn]["quantity"] == int(later.split(",")[4])


def test_defects_are_quarantined_with_their_reason(lake):
    root, _, _ = lake
    reasons = collections.Counter(e["check"] for r in table(root, "quarantine/sales") for e in r["errors"])
    for reason in ("malformed_record", "bad_encoding", "exists_in", "range"):
        assert reasons[reason] > 0, reasons
    malformed = [r for r in table(root, "quarantine/sales") if r["raw_record"]]
    assert all("BROKEN" in r["raw_record"] for r in malformed) and len(malformed) == 3
    customers = collections.Counter(e["check"] for r in table(root, "quarantine/customers") for e in r["errors"])
    assert customers["email"] > 0
    assert all(r["dataset"] == "sales" and r["run_id"] and r["source_file"].endswith("sales.csv")
               for r in table(root, "quarantine/sales"))


def test_gold_matches_an_independent_computation_from_silver(lake):
    root, _, _ = lake
    versions = collections.defaultdict(list)  # the product's versions (history: scd2), in time order
    for p in sorted(table(root, "silver/products"), key=lambda p: p["valid_from"]):
        versions[p["product_id"]].append(p)

    def as_of(product: str, when) -> dict:
        """The version valid at `when` (the gold spec joins as of the sale's time); before the first, the first."""
        held = versions[product]
        return next((v for v in reversed(held) if v["valid_from"].replace(tzinfo=None) <= when), held[0])

    expected: dict[tuple, dict] = collections.defaultdict(lambda: {"tx": 0, "rev": Decimal(0), "cust": set()})
    for s in table(root, "silver/sales"):
        key = (s["transaction_date"], s["store_id"],
               as_of(s["product_id"], s["transaction_timestamp"].replace(tzinfo=None))["category"])
        expected[key]["tx"] += 1
        expected[key]["rev"] += s["net_amount"]
        if s["customer_id"]:
            expected[key]["cust"].add(s["customer_id"])
    gold = {(g["transaction_date"], g["store_id"], g["category"]): g for g in table(root, "gold/daily_sales_summary")}
    assert set(gold) == set(expected)
    for key, exp in expected.items():
        g = gold[key]
        assert (g["transactions"], g["revenue"], g["unique_customers"]) == (exp["tx"], exp["rev"], len(exp["cust"]))
        assert g["profit"] == g["revenue"] - g["cost"]


def test_late_rows_recompute_the_older_gold_date(lake):
    root, _, results = lake
    last = results[-1]
    sales_dates = set(last.datasets[[o.dataset for o in last.datasets].index("sales")].affected_dates[
        "transaction_date"])
    assert END in sales_dates and any(d < END for d in sales_dates)  # late rows for earlier days
    gold = next(g for g in last.golds if g.table == "daily_sales_summary")
    assert set(gold.dates) == sales_dates and gold.merge.updated > 0


def test_rerun_of_the_same_date_changes_nothing(lake):
    root, job, _ = lake
    names = ["silver/sales", "silver/products", "silver/customers", "silver/inventory", "silver/campaigns",
             "gold/daily_sales_summary", "gold/daily_inventory_movement"]
    before_versions = versions(root, names)
    bronze_before = versions(root, ["bronze/sales", "bronze/customers"])
    before = {n: sorted(map(str, table(root, n))) for n in names}
    result = job.run_day(DAYS[1])
    assert not result.failed
    # the raw files are unchanged since they were ingested: bronze is reused, not parsed and rewritten
    assert versions(root, ["bronze/sales", "bronze/customers"]) == bronze_before
    assert all(o.bronze_reused for o in result.datasets)
    assert versions(root, names) == before_versions  # not even a new table version
    assert {n: sorted(map(str, table(root, n))) for n in names} == before
    sales = next(o for o in result.datasets if o.dataset == "sales")
    assert (sales.merge.inserted, sales.merge.updated) == (0, 0) and sales.merge.unchanged == sales.rows_to_silver
    quarantine_days = collections.Counter(str(r["_partition_date"]) for r in table(root, "quarantine/sales"))
    assert sum(quarantine_days.values()) == sum(r["rows_quarantined"] for r in table(root, "_meta/runs")
                                                 if r["name"] == "sales" and r["run_id"] != result.run_id)


def _quality(root: Path) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = collections.Counter()
    for q in table(root, "_meta/quality"):
        out[(q["dataset"], q["check"])] += q["failed_rows"]
    return out


def test_every_injected_defect_is_quarantined_or_flagged(lake):
    root, _, results = lake
    reasons = {ds: collections.Counter(e["check"] for r in table(root, f"quarantine/{ds}") for e in r["errors"]
                                       if e["criticality"] == "error")
               for ds in ("sales", "customers", "products", "inventory", "campaigns")}
    # quarantined, with the reason the specs give
    assert reasons["sales"]["malformed_record"] == 3 and reasons["sales"]["bad_encoding"] == 1
    assert reasons["sales"]["exists_in"] > 0 and reasons["sales"]["range"] > 0  # unknown product, qty < 1
    assert reasons["customers"]["email"] > 0
    assert reasons["products"]["malformed_record"] == 1
    assert reasons["inventory"]["in_set"] > 0 and reasons["inventory"]["required"] > 0
    assert reasons["campaigns"]["starts_before_end"] > 0
    # kept and flagged as warnings
    quality = _quality(root)
    for warned in (("sales", "anonymous_sale"), ("customers", "phone"), ("customers", "in_set")):
        assert quality[warned] > 0, warned
    warn_rows = {q["check"]: q["status"] for q in table(root, "_meta/quality") if q["dataset"] == "customers"
                 and q["failed_rows"]}
    assert warn_rows["phone"] == "warn" and warn_rows["email"] == "fail"
    # duplicates are counted, the drift day's extra column is recorded, late rows touched older gold dates
    runs = [r for r in table(root, "_meta/runs") if r["name"] == "sales"]
    assert sum(r["rows_duplicate"] for r in runs) > 0
    assert [r["new_columns"] for r in sorted(runs, key=lambda r: r["run_date"])][1] == ["payment_method"]
    assert any(r["name"] == "daily_sales_summary" and len(r["gold_dates"] or []) > 1
               for r in table(root, "_meta/runs"))


def test_quality_command_prints_the_counts(lake, capsys):
    from lakehouse.cli import main

    root, _, _ = lake
    assert main(["quality", "--date", str(END), "--lake-root", str(root), "--engine", "rust",
                 "--conf-dir", str(CONF)]) == 0
    out = capsys.readouterr().out
    expected = {q["check"]: q["failed_rows"] for q in table(root, "_meta/quality")
                if q["dataset"] == "sales" and str(q["run_date"]) == str(END) and q["check"] == "anonymous_sale"}
    line = next(ln for ln in out.splitlines() if "anonymous_sale" in ln).split()
    # dataset, check, column, level, rows, failed, observed, threshold (none for a row check), status
    assert line[1] == "anonymous_sale" and line[3] == "warn" and line[-1] == "warn"
    assert line[5] == str(max(expected.values()))
    assert "quality_score" in out
