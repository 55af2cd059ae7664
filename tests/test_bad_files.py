"""The file is the unit of failure: hostile files beside valid data never stop a day, and nothing is lost."""

from __future__ import annotations

import collections
import datetime as dt
import shutil
import textwrap
from pathlib import Path

import deltalake
import pytest

from lakehouse.cli import main
from lakehouse.sample.retail import RetailGenerator
from tests.conftest import CONF
from tests.hostile_files import write_customers, write_products, write_readings, write_sales

pytestmark = pytest.mark.e2e
DAY = dt.date(2024, 6, 3)
READINGS = textwrap.dedent("""\
    name: readings
    source: {format: parquet, path: raw/readings, layout: "date={date}/hour={hour}"}
    schema: {reading_id: string not null, taken_at: timestamp, value: int, hour: int}
    keys: [reading_id]
""")


def table(root: Path, name: str) -> list[dict]:
    return deltalake.DeltaTable(str(root / name)).to_pyarrow_table().to_pylist()


def conf_for(tmp: Path) -> Path:
    conf = tmp / "conf"
    (conf / "datasets").mkdir(parents=True)
    (conf / "aggregations").mkdir()
    for name in ("sales", "products", "customers"):
        shutil.copy(CONF / "datasets" / f"{name}.yaml", conf / "datasets")
    shutil.copy(CONF / "aggregations" / "daily_sales_summary.yaml", conf / "aggregations")
    (conf / "datasets" / "readings.yaml").write_text(READINGS)
    return conf


def run(root: Path, conf: Path) -> int:
    return main(["run", "--date", str(DAY), "--lake-root", str(root), "--conf-dir", str(conf), "--engine", "rust"])


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory):
    """The same valid day twice: `clean` as generated, `hostile` with the corpus dropped beside it."""
    tmp = tmp_path_factory.mktemp("bad_files")
    conf = conf_for(tmp)
    out = {}
    for kind in ("clean", "hostile"):
        root = tmp / kind
        RetailGenerator(root, days=1, rows_per_day=150, seed=3, end_date=DAY, products=20, customers=30).write()
        cases = []
        if kind == "hostile":
            raw = root / "raw"
            cases += write_sales(raw / f"sales/date={DAY}", product="PROD-00001")
            cases += write_products(raw / f"products/date={DAY}")
            cases += write_customers(raw / f"customers/year={DAY.year}/month={DAY.month:02d}/day={DAY.day:02d}")
            cases += write_readings(raw / f"readings/date={DAY}")
        out[kind] = (root, cases, run(root, conf))
    return out


FOLDERS = {"sales": f"raw/sales/date={DAY}", "products": f"raw/products/date={DAY}",
           "customers": f"raw/customers/year={DAY.year}/month={DAY.month:02d}/day={DAY.day:02d}",
           "readings": f"raw/readings/date={DAY}"}


def test_corpus_is_large_enough(lakes):
    _, cases, _ = lakes["hostile"]
    assert len(cases) >= 25


def test_no_hostile_file_fails_the_day(lakes):
    root, _, code = lakes["hostile"]
    assert code == 0
    assert all(r["status"] == "ok" for r in table(root, "_meta/runs")), table(root, "_meta/runs")


def test_every_valid_row_of_the_other_files_reaches_silver(lakes):
    clean_root, _, clean_code = lakes["clean"]
    root, _, _ = lakes["hostile"]
    assert clean_code == 0
    for ds, key in (("sales", "transaction_id"), ("products", "product_id"), ("customers", "customer_id")):
        hostile = {r[key]: r for r in table(root, f"silver/{ds}")}
        for row in table(clean_root, f"silver/{ds}"):
            business = {k: v for k, v in row.items() if not k.startswith("_")}
            assert {k: hostile.get(row[key], {}).get(k) for k in business} == business, (ds, row[key])


def test_each_rejected_file_is_recorded_with_its_cause(lakes):
    root, cases, _ = lakes["hostile"]
    rejected = {(r["dataset"], r["path"]): r for r in table(root, "_meta/rejected_files")}
    for case in cases:
        path = str(root / FOLDERS[case.dataset] / case.name)
        if case.expect == "rejected":
            assert (case.dataset, path) in rejected, case
            record = rejected[(case.dataset, path)]
            assert case.cause in record["reason"] and "\n" not in record["reason"], (case, record["reason"])
            assert record["size"] == Path(path).stat().st_size and record["run_date"] == DAY
        else:
            assert (case.dataset, path) not in rejected, (case, rejected.get((case.dataset, path)))
    runs = {r["name"]: r for r in table(root, "_meta/runs") if r["layer"] == "silver"}
    for ds in FOLDERS:
        expected = sum(1 for c in cases if c.dataset == ds and c.expect == "rejected")
        assert runs[ds]["files_rejected"] == expected, ds
    log = {r["path"]: r for r in table(root, "_meta/ingested_files")}
    assert all(log[str(root / FOLDERS[c.dataset] / c.name)]["status"] == "rejected" for c in cases
               if c.expect == "rejected")


def test_skipped_and_hidden_files_and_symlinks(lakes):
    root, cases, _ = lakes["hostile"]
    sales = next(r for r in table(root, "_meta/runs") if r["name"] == "sales")
    assert sales["files_skipped"] == sum(1 for c in cases if c.dataset == "sales" and c.expect == "skipped")
    sources = collections.Counter(r["_source_file"].rsplit("/", 1)[-1] for r in table(root, "bronze/sales"))
    # the loop and the alias lead to files already listed: every file read once
    assert sources["crlf.csv"] == 3 and "crlf_alias.csv" not in sources
    assert sources["more.csv"] == 3 and not any(".hidden" in s for s in sources)
    assert sales["files_read"] == sum(1 for c in cases if c.dataset == "sales" and c.expect == "read") + 1


def test_row_accounting_holds_in_every_run_record(lakes):
    for kind in ("clean", "hostile"):
        root, _, _ = lakes[kind]
        for r in table(root, "_meta/runs"):
            if r["layer"] == "silver":
                assert r["rows_read"] == (r["rows_to_silver"] + r["rows_quarantined"] + r["rows_duplicate"]
                                          + r["rows_held_back"]), r


def test_values_arrive_as_written(lakes):
    root, _, _ = lakes["hostile"]
    silver = {r["transaction_id"]: r for r in table(root, "silver/sales")}
    assert silver["TXN-QUOTE-0"]["store_id"] == '=HYPERLINK("HTTP://X")'  # upper-cased by the spec's cleaning
    reordered = silver["TXN-REORDER-2"]
    assert (reordered["quantity"], reordered["customer_id"], str(reordered["unit_price"])) == (3, "CUST00003",
                                                                                              "10.00")
    assert silver["TXN-MISSING-1"]["discount_percent"] == 0.0  # absent in the file: null, then the fill_null step
    assert silver["TXN-EXTRA-0"]["payment_method"] == "card"
    assert silver["TXN-CRLF-0"]["transaction_timestamp"] == dt.datetime(2024, 6, 3, 10, 0, tzinfo=dt.UTC)
    assert silver["TXN-BOM-0"]["store_id"] == "STORE_001"
    assert {"TXN-GZ-0", "TXN-BZ2-0", "TXN-UPPER-0", "TXN-DEEP-0", "TXN-HUGE-0"} <= set(silver)
    quarantined = {r["record"] and __import__("json").loads(r["record"]).get("transaction_id"):
                   {e["check"] for e in r["errors"]} for r in table(root, "quarantine/sales")}
    assert quarantined["TXN-NUL-0"] == {"bad_encoding"}
    assert quarantined["TXN-LATIN-0"] == {"bad_encoding"}
    malformed = [r for r in table(root, "quarantine/sales") if r["raw_record"] and "too,many" in r["raw_record"]]
    assert len(malformed) == 1


def test_quoted_line_breaks_load_intact_and_an_unbalanced_quote_is_quarantined_by_row(lakes):
    root, _, _ = lakes["hostile"]
    silver = {r["transaction_id"]: r for r in table(root, "silver/sales")}
    assert {f"TXN-MULTI-{i}" for i in range(3)} <= set(silver)
    assert silver["TXN-MULTI-1"]["store_id"] == 'STORE 001\nNORTH WING, "ANNEX"'
    assert silver["TXN-MULTI-2"]["quantity"] == 3  # the row after the line break is a row of its own
    # in a file whose lines end in CRLF, the parser gives a quoted CRLF as one line feed
    assert silver["TXN-GZMULTI-0"]["store_id"] == "A\nB"
    assert "TXN-GZMULTI-1" in silver
    # the unbalanced quote: the rows before it load; from it on, what the line parser makes of the rest is
    # quarantined with the raw line, and no row is lost
    assert "TXN-UNBAL-0" in silver and "TXN-UNBAL-1" not in silver
    raw = [r["raw_record"] or r["record"] for r in table(root, "quarantine/sales")]
    assert any("TXN-UNBAL-1" in (x or "") for x in raw), raw
    unbal = [r for r in table(root, "bronze/sales") if r["_source_file"].endswith("/unbalanced_quote.csv")]
    assert len(unbal) == 3


def test_json_object_where_a_scalar_is_declared_is_a_type_mismatch(lakes):
    root, _, _ = lakes["hostile"]
    keys = {r["product_id"] for r in table(root, "silver/products")}
    assert "XPRD-0001" in keys and "XPRD-0002" in keys
    assert not any(k.startswith("{") for k in keys)
    errors = [e for r in table(root, "quarantine/products") for e in r["errors"]
              if e["check"] == "type_mismatch" and e["column"] == "product_id"]
    assert len(errors) == 1 and "XPRD-0013" in errors[0]["message"] and "JSON object" in errors[0]["message"]


def test_parquet_by_name_with_nanoseconds_and_extra_levels(lakes):
    root, _, _ = lakes["hostile"]
    customers = {r["customer_id"]: r for r in table(root, "silver/customers")}
    assert customers["CUST-REORDER-1"]["email"] == "c1@example.com"
    assert customers["CUST-REORDER-1"]["loyalty_points"] == "2"  # undeclared: kept, as text
    readings = {r["reading_id"]: r for r in table(root, "silver/readings")}
    # 1_717_408_800_123_456_789 ns: the microseconds kept, as Spark keeps microseconds
    assert readings["R-00-0"]["taken_at"] == dt.datetime(2024, 6, 3, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert readings["R-13-1"]["hour"] == 13 and readings["R-00-2"]["hour"] == 0
    assert all(r["_source_file"].endswith("/readings.parquet") and "/hour=" in r["_source_file"]
               for r in readings.values())
    # 3,000,000,000 does not fit an int: a type mismatch, never a wrapped number
    assert "R-13-2" not in readings
    (row,) = [r for r in table(root, "quarantine/readings")]
    assert [e["check"] for e in row["errors"]] == ["type_mismatch"] and "3000000000" in row["errors"][0]["message"]


def test_on_bad_file_fail_fails_the_dataset_and_says_which_file(spark, tmp_path):
    root = tmp_path / "lake"
    RetailGenerator(root, days=1, rows_per_day=50, seed=3, end_date=DAY, products=20, customers=30).write()
    folder = root / "raw" / "customers" / f"year={DAY.year}" / f"month={DAY.month:02d}" / f"day={DAY.day:02d}"
    (folder / "zero.parquet").write_bytes(b"")
    conf = tmp_path / "conf"
    (conf / "datasets").mkdir(parents=True)
    (conf / "aggregations").mkdir()
    text = (CONF / "datasets" / "customers.yaml").read_text() + "on_bad_file: fail\n"
    (conf / "datasets" / "customers.yaml").write_text(text)
    assert run(root, conf) == 1
    (record,) = table(root, "_meta/runs")
    assert record["status"] == "failed" and "zero.parquet" in record["message"] and "0 bytes" in record["message"]
    assert record["rows_read"] > 0 and record["rows_held_back"] == record["rows_read"] - record["rows_quarantined"]
    assert not (root / "silver" / "customers").exists()
    # --pending leaves a rejected file alone until it changes
    (folder / "zero.parquet").unlink()
    assert main(["run", "--pending", "--lake-root", str(root), "--conf-dir", str(conf), "--engine", "rust"]) == 0
    assert len(table(root, "silver/customers")) > 0


def test_the_drift_day_file_and_an_old_header_file_load_together(spark, tmp_path):
    root = tmp_path / "lake"
    gen = RetailGenerator(root, days=3, rows_per_day=80, seed=9, end_date=DAY, products=20, customers=30)
    gen.write()
    folder = root / "raw" / "sales" / f"date={gen.drift_day}"
    header, *lines = (folder / "sales.csv").read_text(encoding="utf-8").splitlines()
    assert header.endswith(",payment_method")
    # the same kind of rows under the header of the other days: no payment_method column, other ids
    old = [",".join(["OLD-" + ln.split(",")[0], *ln.split(",")[1:8]]) for ln in lines[:20] if ln.count(",") == 8]
    (folder / "sales_old_export.csv").write_text("\n".join([header.rsplit(",", 1)[0], *old]) + "\n")
    conf = conf_for(tmp_path)
    (conf / "datasets" / "readings.yaml").unlink()
    assert main(["run", "--start", str(gen.days[0]), "--end", str(gen.drift_day), "--lake-root", str(root),
                 "--conf-dir", str(conf), "--engine", "rust"]) == 0
    silver = {r["transaction_id"]: r for r in table(root, "silver/sales")}
    olds = {k[4:]: r for k, r in silver.items() if k.startswith("OLD-")}
    # each copied row fares as its original did (a few originals fail a check), with no payment_method
    originals = {ln.split(",")[0][4:] for ln in old}
    assert set(olds) == {k for k in originals if k in silver} and len(olds) >= len(old) - 3
    assert all(r["payment_method"] is None for r in olds.values())
    assert {r["payment_method"] for k, r in silver.items() if not k.startswith("OLD-")} >= {"card", "cash"}
    (run,) = [r for r in table(root, "_meta/runs") if r["name"] == "sales" and r["run_date"] == gen.drift_day]
    assert run["files_read"] == 2 and run["files_rejected"] == 0 and run["new_columns"] == ["payment_method"]
