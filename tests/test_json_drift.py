"""Nothing in a JSON file is silently dropped: keys the schema does not declare (top level, or inside a declared
struct) follow `on_new_columns` like a CSV file's extra column, are named in the run record, and reach bronze."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import deltalake
import pytest

from lakehouse.cli import main
from tests.conftest import CONF

DAY = dt.date(2024, 6, 3)
PRODUCT = {"product_id": "P-1", "name": "plain", "category": "Toys", "brand": "Acme",
           "pricing": {"cost_price": 1.5, "retail_price": 2.5, "currency": "EUR"},
           "last_updated": "2024-06-03 10:00:00"}
NEW = ["loyalty_tier", "pricing__discount_tier", "tags"]


def table(root: Path, name: str) -> list[dict]:
    return deltalake.DeltaTable(str(root / name)).to_pyarrow_table().to_pylist()


def lake_with_drift(tmp: Path, mode: str) -> tuple[Path, Path]:
    conf = tmp / "conf"
    (conf / "datasets").mkdir(parents=True)
    (conf / "aggregations").mkdir()
    text = (CONF / "datasets" / "products.yaml").read_text() + f"on_new_columns: {mode}\n"
    (conf / "datasets" / "products.yaml").write_text(text)
    folder = tmp / "lake" / "raw" / "products" / f"date={DAY}"
    folder.mkdir(parents=True)
    drifted = {**PRODUCT, "product_id": "P-2", "loyalty_tier": "gold", "tags": ["new", {"x": 1}],
               "pricing": {**PRODUCT["pricing"], "discount_tier": 3}}
    # two files: one as declared, one with a new top-level scalar, a new array and a new field inside `pricing`
    (folder / "a.json").write_text(json.dumps(PRODUCT) + "\n")
    (folder / "b.json").write_text(json.dumps(drifted) + "\n" + json.dumps({**PRODUCT, "product_id": "P-3"}) + "\n")
    return tmp / "lake", conf


def run(lake: Path, conf: Path) -> int:
    return main(["run", "--date", str(DAY), "--lake-root", str(lake), "--conf-dir", str(conf), "--engine", "rust"])


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory):
    out = {}
    for mode in ("add", "ignore", "fail"):
        lake, conf = lake_with_drift(tmp_path_factory.mktemp(f"json_drift_{mode}"), mode)
        out[mode] = (lake, run(lake, conf))
    return out


@pytest.mark.parametrize("mode", ["add", "ignore", "fail"])
def test_new_keys_reach_bronze_and_the_run_record(lakes, mode):
    lake, _ = lakes[mode]
    bronze = {r["product_id"]: r for r in table(lake, "bronze/products")}
    assert set(bronze) == {"P-1", "P-2", "P-3"}
    assert bronze["P-2"]["loyalty_tier"] == "gold"
    assert json.loads(bronze["P-2"]["tags"]) == ["new", {"x": 1}]  # an array kept as its JSON text
    assert bronze["P-2"]["pricing__discount_tier"] == "3"
    assert bronze["P-1"]["loyalty_tier"] is None and bronze["P-3"]["tags"] is None
    (record,) = [r for r in table(lake, "_meta/runs") if r["name"] == "products"]
    assert sorted(record["new_columns"]) == NEW


def test_add_carries_them_into_silver(lakes):
    lake, code = lakes["add"]
    assert code == 0
    silver = {r["product_id"]: r for r in table(lake, "silver/products")}
    assert silver["P-2"]["loyalty_tier"] == "gold" and silver["P-2"]["pricing__discount_tier"] == "3"
    assert silver["P-1"]["loyalty_tier"] is None
    assert str(silver["P-2"]["cost_price"]) == "1.50"  # the declared struct is read as before


def test_ignore_keeps_them_in_bronze_only(lakes):
    lake, code = lakes["ignore"]
    assert code == 0
    silver = table(lake, "silver/products")
    assert {r["product_id"] for r in silver} == {"P-1", "P-2", "P-3"}
    assert not set(NEW) & set(silver[0])


def test_fail_fails_the_dataset_and_names_them(lakes):
    lake, code = lakes["fail"]
    assert code == 1
    (record,) = [r for r in table(lake, "_meta/runs") if r["name"] == "products"]
    assert record["status"] == "failed" and all(c in record["message"] for c in NEW)
    assert not (lake / "silver" / "products").exists()


def test_a_file_without_new_keys_beside_others_is_read_as_declared(lakes):
    lake, _ = lakes["add"]
    silver = {r["product_id"]: r for r in table(lake, "silver/products")}
    assert silver["P-1"]["name"] == "plain" and silver["P-1"]["category"] == "toys"


def _keys_both_ways(spark, spec, paths, monkeypatch):
    from lakehouse.sources import json_keys
    from lakehouse.sources.reader import _spark_path

    spark_paths = {p: _spark_path(spark, p) for p in paths}
    python = json_keys._python_keys(spec, spec.source_schema(), paths)
    mixed = json_keys.new_keys(spark, spec, paths, spark_paths)
    monkeypatch.setattr(json_keys, "PYTHON_SCAN_BYTES", -1)  # the Spark pass for every file
    spark_pass = json_keys.new_keys(spark, spec, paths, spark_paths)
    assert mixed == spark_pass  # Python's files and Spark's, together, as Spark alone
    return python, spark_pass


def test_the_python_scan_of_a_small_batch_finds_what_the_spark_pass_finds(spark, tmp_path, monkeypatch):
    from lakehouse.specs import load_catalog

    spec = load_catalog(CONF).datasets["products"]
    records = [
        PRODUCT,
        {**PRODUCT, "Loyalty Tier": "gold", "pricing": {**PRODUCT["pricing"], "discountTier": 3, "nested": {"a": 1}}},
        {**PRODUCT, "tags": [{"inner": 1}], "pricing": None, "": "empty name"},
        {"product_id": "P-9", "pricing": "not an object", "extra": {"deep": {"deeper": True}}},
    ]
    paths = []
    for i, chunk in enumerate([records[:2], records[2:], []]):
        path = tmp_path / f"part-{i}.json"
        path.write_text("".join(json.dumps(r) + "\n" + ("\n" if i == 0 else "") for r in chunk))
        paths.append(str(path))
    python, spark_pass = _keys_both_ways(spark, spec, paths, monkeypatch)
    assert python == spark_pass
    assert [name for _, name in python[paths[0]]] == ["Loyalty Tier", "pricing__discountTier", "pricing__nested"]
    assert python[paths[2]] == ()


@pytest.mark.parametrize("line", [
    '{"product_id": "P-1", "product_id": "P-2"}',   # a duplicate key: Spark's variant refuses the record
    '{"product_id": "P-1", "x": NaN}',              # a constant outside JSON
    '{"product_id": "P-1"',                         # malformed
    '[{"product_id": "P-1"}]',                      # not an object
    '{"product_id": "P-1", "x": 1e999}',            # out of a double's range
])
def test_a_file_with_a_record_that_is_not_plain_json_goes_to_spark(spark, tmp_path, monkeypatch, line):
    from lakehouse.specs import load_catalog

    spec = load_catalog(CONF).datasets["products"]
    good, odd = tmp_path / "a.json", tmp_path / "b.json"
    good.write_text(json.dumps({**PRODUCT, "new_key": 1}) + "\n")
    odd.write_text(line + "\n" + json.dumps({**PRODUCT, "other_key": 1}) + "\n")
    python, spark_pass = _keys_both_ways(spark, spec, [str(good), str(odd)], monkeypatch)
    assert set(python) == {str(good)}  # Python vouches for the plain file only
    assert [name for _, name in spark_pass[str(good)]] == ["new_key"]
    assert "other_key" in [name for _, name in spark_pass[str(odd)]]  # Spark reads NaN and 1e999 records too
