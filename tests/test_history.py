"""Dimensions with history (`history: scd2`) and gold joined as of the facts' time, on both engines: a product
changes category on day 3, a late file on day 5 carries a version of day 2; a rerun changes nothing; a full
refresh rebuilds the same history and the same gold. Every expectation is computed by hand below."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import deltalake
import pytest

from lakehouse.pipeline.job import DailyJob
from lakehouse.specs import load_catalog
from tests.lake_rows import table_versions

PRODUCTS = """\
name: products
source: {format: csv, path: raw/products}
schema: {product_id: string not null, category: string, cost: "decimal(10,2)", last_updated: timestamp}
keys: [product_id]
history: {type: scd2, changed_at: last_updated, ignore: [cost]}
"""
SALES = """\
name: sales
source: {format: csv, path: raw/sales}
schema: {transaction_id: string not null, product_id: string not null, quantity: int,
         transaction_timestamp: timestamp not null}
keys: [transaction_id]
cleaning:
  - derive: {transaction_date: "to_date(transaction_timestamp)"}
checks:
  - {check: exists_in, column: product_id, ref: products.product_id}
target: {partition_by: [transaction_date]}
"""
AS_OF = """\
name: quantity_by_category
from: sales
date_column: transaction_date
joins: [{table: products, on: [product_id], as_of: transaction_timestamp, select: [category]}]
group_by: [transaction_date, category]
measures: {quantity: "sum(quantity)"}
"""
LATEST = AS_OF.replace("quantity_by_category", "quantity_by_current_category").replace(
    ", as_of: transaction_timestamp", "")

D = [dt.date(2024, 3, d) for d in range(1, 6)]
RAW = {
    ("products", D[0]): "product_id,category,cost,last_updated\n"
                        "P1,toys,1.00,2024-03-01 00:00:00\nP2,games,2.00,2024-03-01 00:00:00\n",
    # day 2: P1 again with only its cost changed (an ignored column): no new version, the cost is updated
    ("products", D[1]): "product_id,category,cost,last_updated\nP1,toys,1.50,2024-03-02 00:00:00\n",
    ("products", D[2]): "product_id,category,cost,last_updated\nP1,books,1.50,2024-03-03 06:00:00\n",
    # day 5: a late file carrying P2's version of day 2
    ("products", D[4]): "product_id,category,cost,last_updated\nP2,puzzles,2.00,2024-03-02 00:00:00\n",
    ("sales", D[0]): "transaction_id,product_id,quantity,transaction_timestamp\n"
                     "T1,P1,1,2024-03-01 10:00:00\nT2,P2,2,2024-03-01 11:00:00\n",
    ("sales", D[1]): "transaction_id,product_id,quantity,transaction_timestamp\nT3,P1,3,2024-03-02 10:00:00\n",
    ("sales", D[2]): "transaction_id,product_id,quantity,transaction_timestamp\n"
                     "T4,P1,5,2024-03-03 12:00:00\nT5,P1,7,2024-03-03 05:00:00\n",
    ("sales", D[3]): "transaction_id,product_id,quantity,transaction_timestamp\nT6,P2,1,2024-03-04 09:00:00\n",
    ("sales", D[4]): "transaction_id,product_id,quantity,transaction_timestamp\nT7,P2,4,2024-03-05 09:00:00\n",
}


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# the hand-computed history after day 5: P1 toys until its change on day 3 (the cost moved on day 2 within the
# version), P2 games until the late day-2 version
HISTORY = [
    ("P1", "toys", "1.50", t("2024-03-01 00:00"), t("2024-03-03 06:00"), False),
    ("P1", "books", "1.50", t("2024-03-03 06:00"), None, True),
    ("P2", "games", "2.00", t("2024-03-01 00:00"), t("2024-03-02 00:00"), False),
    ("P2", "puzzles", "2.00", t("2024-03-02 00:00"), None, True),
]
# gold as of each sale's time: T5 (05:00 on day 3) is before P1's change; T6 (day 4) after P2's late version
AS_OF_GOLD = {(D[0], "toys"): 1, (D[0], "games"): 2, (D[1], "toys"): 3, (D[2], "toys"): 7, (D[2], "books"): 5,
              (D[3], "puzzles"): 1, (D[4], "puzzles"): 4}
# every day rebuilt with today's versions (what a full refresh of the latest-version join gives)
LATEST_GOLD = {(D[0], "books"): 1, (D[0], "puzzles"): 2, (D[1], "books"): 3, (D[2], "books"): 12,
               (D[3], "puzzles"): 1, (D[4], "puzzles"): 4}


def write_day(root: Path, day: dt.date) -> None:
    for (name, when), text in RAW.items():
        if when == day:
            folder = root / "raw" / name / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.csv").write_text(text)


def history(root: Path) -> list[tuple]:
    rows = deltalake.DeltaTable(str(root / "silver" / "products")).to_pyarrow_table().to_pylist()
    return sorted((r["product_id"], r["category"], str(r["cost"]), r["valid_from"].replace(tzinfo=None),
                   r["valid_to"] and r["valid_to"].replace(tzinfo=None), r["is_current"]) for r in rows)


def gold(root: Path, name: str) -> dict:
    rows = deltalake.DeltaTable(str(root / "gold" / name)).to_pyarrow_table().to_pylist()
    return {(r["transaction_date"], r["category"]): r["quantity"] for r in rows}


@pytest.fixture
def conf(tmp_path):
    conf = tmp_path / "conf"
    (conf / "datasets").mkdir(parents=True)
    (conf / "aggregations").mkdir()
    (conf / "datasets" / "products.yaml").write_text(PRODUCTS)
    (conf / "datasets" / "sales.yaml").write_text(SALES)
    (conf / "aggregations" / "quantity_by_category.yaml").write_text(AS_OF)
    (conf / "aggregations" / "quantity_by_current_category.yaml").write_text(LATEST)
    return conf


def test_history_and_as_of_gold_follow_late_versions_reruns_and_refreshes(engine, conf, tmp_path):
    root = tmp_path / "lake"
    job = DailyJob(engine, load_catalog(conf), batch_days=1)
    for day in D[:4]:
        write_day(root, day)
        assert not job.run_day(day).failed
    # after day 4: P1 changed on day 3, P2 has one version; gold as of each sale, P2 still games
    assert history(root) == [
        ("P1", "books", "1.50", t("2024-03-03 06:00"), None, True),
        ("P1", "toys", "1.50", t("2024-03-01 00:00"), t("2024-03-03 06:00"), False),
        ("P2", "games", "2.00", t("2024-03-01 00:00"), None, True)]
    assert gold(root, "quantity_by_category") == {**{k: v for k, v in AS_OF_GOLD.items() if k[0] < D[3]},
                                                  (D[3], "games"): 1}
    # day 5: the late version of day 2 closes P2's first interval and moves day 4's sale to it
    write_day(root, D[4])
    result = job.run_day(D[4])
    assert not result.failed
    assert history(root) == sorted(HISTORY)
    assert gold(root, "quantity_by_category") == AS_OF_GOLD
    gold_run = next(g for g in result.golds if g.table == "quantity_by_category")
    assert D[3] in gold_run.dates  # day 4's sale met another version: its date was recomputed
    # a rerun of day 5 writes no data table (the run log records the run)
    versions = {k: v for k, v in table_versions(root).items() if not k.startswith("_meta/")}
    assert not job.run_day(D[4]).failed
    assert {k: v for k, v in table_versions(root).items() if not k.startswith("_meta/")} == versions
    # a full refresh rebuilds the same history and the same as-of gold; the latest-version join now takes
    # today's versions for every day: different numbers, the as-of ones are the expected ones
    assert not any(r.failed for r in DailyJob(engine, load_catalog(conf)).full_refresh(None))  # one batch
    assert history(root) == sorted(HISTORY)
    assert gold(root, "quantity_by_category") == AS_OF_GOLD
    assert gold(root, "quantity_by_current_category") == LATEST_GOLD


def test_a_late_version_that_extends_a_later_one_moves_the_facts_in_between(rust_engine, conf, tmp_path):
    """A version of P1 arriving late with the category P1 has now, dated before the change: no new version, but
    the current one starts earlier; the sale in between is counted under it from then on."""
    root = tmp_path / "lake"
    job = DailyJob(rust_engine, load_catalog(conf), batch_days=1)
    days = {
        D[0]: {"products": "product_id,category,cost,last_updated\nP1,toys,1.00,2024-03-01 00:00:00\n",
               "sales": "transaction_id,product_id,quantity,transaction_timestamp\nT1,P1,1,2024-03-01 10:00:00\n"},
        D[1]: {"sales": "transaction_id,product_id,quantity,transaction_timestamp\nT2,P1,3,2024-03-02 18:00:00\n"},
        D[2]: {"products": "product_id,category,cost,last_updated\nP1,books,1.00,2024-03-03 06:00:00\n"},
        D[3]: {"products": "product_id,category,cost,last_updated\nP1,books,1.00,2024-03-02 12:00:00\n"},
    }
    for day, files in days.items():
        for name, text in files.items():
            folder = root / "raw" / name / f"date={day}"
            folder.mkdir(parents=True)
            (folder / f"{name}.csv").write_text(text)
        assert not job.run_day(day).failed
        if day == D[2]:
            assert gold(root, "quantity_by_category") == {(D[0], "toys"): 1, (D[1], "toys"): 3}
    assert history(root) == [
        ("P1", "books", "1.00", t("2024-03-02 12:00"), None, True),
        ("P1", "toys", "1.00", t("2024-03-01 00:00"), t("2024-03-02 12:00"), False)]
    assert gold(root, "quantity_by_category") == {(D[0], "toys"): 1, (D[1], "books"): 3}


def test_a_history_spec_that_cannot_work_is_a_spec_error(spark, conf, tmp_path):
    from lakehouse.api import Lakehouse
    from lakehouse.errors import SpecError
    from lakehouse.settings import Settings
    from lakehouse.tables import select_engine
    from lakehouse.tables.paths import LakeLayout

    products = conf / "datasets" / "products.yaml"
    for history, message in (
            ("{type: scd2, changed_at: updated}", "history.changed_at names unknown column(s) ['updated']"),
            ("{type: scd3}", "history.type: must be 'scd2', not 'scd3'"),
            ("{type: scd2, ignore: [price]}", "history.ignore names unknown column(s) ['price']")):
        products.write_text(PRODUCTS.replace("{type: scd2, changed_at: last_updated, ignore: [cost]}", history))
        with pytest.raises(SpecError, match=re.escape(message)):
            load_catalog(conf)
    products.write_text(PRODUCTS + "target: {partition_by: [category]}\n")
    with pytest.raises(SpecError, match="history: scd2 keeps a key's versions together"):
        load_catalog(conf)
    products.write_text(PRODUCTS.replace("cost: \"decimal(10,2)\"", "valid_to: date"))
    with pytest.raises(SpecError, match=re.escape("history: scd2 adds the columns ['valid_from', 'valid_to', "
                                                  "'is_current']; the dataset has ['valid_to'] already")):
        load_catalog(conf)
    # an as-of join needs a history table and a fact column
    products.write_text(PRODUCTS.replace("history: {type: scd2, changed_at: last_updated, ignore: [cost]}\n", ""))
    lake = Lakehouse(Settings(lake_root=str(tmp_path / "lake"), engine="rust", conf_dir=str(conf)),
                     engine=select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust"))
    with pytest.raises(SpecError, match="joins.0.as_of: products keeps no history: as_of needs `history: scd2`"):
        lake.validate()
    products.write_text(PRODUCTS)
    (conf / "aggregations" / "quantity_by_category.yaml").write_text(
        AS_OF.replace("as_of: transaction_timestamp", "as_of: transaction_timestmp"))
    lake = Lakehouse(Settings(lake_root=str(tmp_path / "lake"), engine="rust", conf_dir=str(conf)),
                     engine=select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust"))
    with pytest.raises(SpecError, match="joins.0.as_of: unknown column 'transaction_timestmp' \\(did you mean "
                                        "'transaction_timestamp'\\?\\)"):
        lake.validate()
