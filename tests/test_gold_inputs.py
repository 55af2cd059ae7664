"""Gold follows its inputs: a silver table changed outside a run (a restore, a DELETE or UPDATE by hand) is seen
by the next `--pending`, which recomputes the gold dates the change touches; gold then equals a gold table built
afresh from the same silver. Maintenance that changes no data (OPTIMIZE) asks for nothing."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import deltalake
import pytest

from lakehouse import report
from lakehouse.api import Lakehouse
from lakehouse.cli import main
from lakehouse.pipeline import pending_gold
from lakehouse.pipeline.gold import every_date, recompute
from lakehouse.pipeline.job import DailyJob
from lakehouse.sample.retail import RetailGenerator
from lakehouse.settings import Settings
from lakehouse.specs import load_catalog
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.lake_rows import lake_rows
from tests.test_incremental import mini_conf

END = dt.date(2024, 6, 3)
DAYS = [END - dt.timedelta(days=2), END - dt.timedelta(days=1), END]


@pytest.fixture
def lake(spark, tmp_path):
    root = tmp_path / "lake"
    RetailGenerator(root, days=3, rows_per_day=120, seed=23, end_date=END, products=20, customers=30).write()
    conf = mini_conf(tmp_path)
    job = DailyJob(select_engine(spark, LakeLayout(str(root)), "rust"), load_catalog(conf))
    assert not any(r.failed for r in job.run_pending())
    return root, conf, job


def gold_from_scratch(spark, root: Path, conf: Path, where: Path) -> dict[str, list[str]]:
    """The gold tables built afresh from the lake's silver as it is now: on a copy without gold, every date its
    silver holds aggregated anew (no raw file read)."""
    shutil.copytree(root, where)
    shutil.rmtree(where / "gold")
    engine = select_engine(spark, LakeLayout(str(where)), "rust")
    for agg in load_catalog(conf).aggregations.values():
        recompute(engine, agg, sorted(every_date(engine, agg)), END, "scratch")
    return {t: [r.replace(str(where), str(root)) for r in rows] for t, rows in lake_rows(where, ("gold",)).items()}


def gold_of(root: Path) -> dict[str, list[str]]:
    return lake_rows(root, ("gold",))


def notes(results) -> str:
    return "\n".join(n for r in results for n in r.notes)


def test_a_row_deleted_from_silver_by_hand_reaches_gold(spark, lake, tmp_path, capsys):
    root, conf, job = lake
    sales = deltalake.DeltaTable(str(root / "silver/sales"))
    day = DAYS[1]
    (victim,) = [r["transaction_id"] for r in sales.to_pyarrow_table().to_pylist()
                 if r["transaction_date"] == day][:1]
    gold_before = gold_of(root)
    sales.delete(f"transaction_id = '{victim}'")
    args = ["--lake-root", str(root), "--conf-dir", str(conf), "--engine", "rust"]
    assert main(["plan", "--pending", *args]) == 0  # from the tables' logs, no Spark
    plan = capsys.readouterr().out
    gold = root / "gold" / "daily_sales_summary"
    assert f"recompute {gold} for the dates the change touches (--gold-dates lists them): silver/sales changed " \
           f"outside a run (version {sales.version()}: DELETE)" in plan, plan
    assert "nothing pending" not in plan and "daily_inventory_movement" not in plan, plan
    assert main(["plan", "--pending", "--gold-dates", *args]) == 0
    plan = capsys.readouterr().out
    assert f"recompute {gold} for 1 date(s): {day}: silver/sales changed outside a run (version " \
           f"{sales.version()}: DELETE)" in plan, plan
    results = job.run_pending()
    assert not any(r.failed for r in results)
    assert "silver/sales changed outside a run (version" in notes(results) and "DELETE" in notes(results)
    assert [g.dates for r in results for g in r.golds if g.table == "daily_sales_summary"] == [[day]]
    assert gold_of(root) != gold_before
    assert gold_of(root) == gold_from_scratch(spark, root, conf, tmp_path / "scratch")
    assert job.run_pending() == []  # settled: nothing pending any more


def test_a_dimension_updated_by_hand_recomputes_the_dates_that_reference_it(spark, lake, tmp_path):
    root, conf, job = lake
    products = deltalake.DeltaTable(str(root / "silver/products"))
    sales = deltalake.DeltaTable(str(root / "silver/sales")).to_pyarrow_table().to_pylist()
    product = sales[0]["product_id"]
    products.update(predicate=f"product_id = '{product}'", updates={"category": "'Relabelled'"})
    expected = sorted({r["transaction_date"] for r in sales if r["product_id"] == product})
    lake_api = Lakehouse(Settings(lake_root=str(root), engine="rust", conf_dir=str(conf)), engine=job.engine)
    plan = report.plan_text(lake_api.plan(pending=True, gold_dates=True))
    assert f"for {len(expected)} date(s): {', '.join(map(str, expected))}: silver/products joined table, changed " \
           f"since gold was built (version {products.version()}: UPDATE)" in plan, plan
    results = job.run_pending()
    assert [g.dates for r in results for g in r.golds if g.table == "daily_sales_summary"] == [expected]
    assert "silver/products joined table, changed since gold was built (version" in notes(results)
    assert any('"category": "Relabelled"' in row for row in gold_of(root)["gold/daily_sales_summary"])
    assert gold_of(root) == gold_from_scratch(spark, root, conf, tmp_path / "scratch")


def test_a_dimension_column_gold_does_not_use_recomputes_nothing(lake):
    """A product's brand changed by hand: daily_sales_summary reads category and cost_price of products, not brand,
    so no gold date is recomputed and gold keeps its version."""
    root, conf, job = lake
    gold = deltalake.DeltaTable(str(root / "gold/daily_sales_summary")).version()
    products = deltalake.DeltaTable(str(root / "silver/products"))
    product = products.to_pyarrow_table().to_pylist()[0]["product_id"]
    products.update(predicate=f"product_id = '{product}'", updates={"brand": "'Rebranded'"})
    results = job.run_pending()
    assert [g.dates for r in results for g in r.golds if g.table == "daily_sales_summary"] == [[]]
    assert "silver/products joined table, changed since gold was built" in notes(results)
    assert deltalake.DeltaTable(str(root / "gold/daily_sales_summary")).version() == gold


def test_restore_of_silver_then_pending_leaves_gold_consistent(spark, lake, tmp_path):
    """A changed raw file reloads day 3 (silver and gold move on); silver is then restored to the version before:
    the next `--pending` brings gold back in line with it."""
    root, conf, job = lake
    args = ["--lake-root", str(root), "--conf-dir", str(conf), "--engine", "rust"]
    good = deltalake.DeltaTable(str(root / "silver/sales")).version()
    gold_good = gold_of(root)
    raw = root / f"raw/sales/date={END}/sales.csv"
    lines = raw.read_text(encoding="latin-1").splitlines()
    header = lines[0].split(",")
    for i in range(1, 6):
        cells = lines[i].split(",")
        cells[header.index("quantity")] = "97"
        lines[i] = ",".join(cells)
    raw.write_text("\n".join(lines) + "\n", encoding="latin-1")
    assert not any(r.failed for r in job.run_pending())
    assert gold_of(root) != gold_good
    assert main(["restore", "silver/sales", "--to-version", str(good), *args]) == 0
    results = job.run_pending()
    assert "RESTORE" in notes(results), notes(results)
    assert [g.dates for r in results for g in r.golds if g.table == "daily_sales_summary"] == [[END]]
    assert gold_of(root) == gold_good
    assert gold_of(root) == gold_from_scratch(spark, root, conf, tmp_path / "scratch")
    assert job.run_pending() == []


def test_plan_names_the_dates_a_stopped_run_owes_gold(spark, lake):
    """A run that changed silver and stopped before its gold stage owes gold dates (`_meta/gold_pending`): the
    plan names them and the run that owes them, and the next `--pending` settles them."""
    root, conf, job = lake
    pending_gold.record(job.engine, "20240603-stopped", {"daily_sales_summary": DAYS[:2]})
    lake_api = Lakehouse(Settings(lake_root=str(root), engine="rust", conf_dir=str(conf)), engine=job.engine)
    plan = report.plan_text(lake_api.plan(pending=True))
    assert f"recompute {root / 'gold' / 'daily_sales_summary'} for 2 date(s): {DAYS[0]}, {DAYS[1]}: owed by " \
           "run(s) 20240603-stopped, stopped before gold" in plan, plan
    results = job.run_pending()
    assert [g.dates for r in results for g in r.golds if g.table == "daily_sales_summary"] == [DAYS[:2]]
    assert "nothing pending" in report.plan_text(lake_api.plan(pending=True))


def test_compaction_of_silver_asks_for_nothing(lake):
    root, conf, job = lake
    args = ["--lake-root", str(root), "--conf-dir", str(conf), "--engine", "rust"]
    versions = {t: deltalake.DeltaTable(str(root / t)).version() for t in ("gold/daily_sales_summary",)}
    assert main(["optimize", *args]) == 0
    assert job.run_pending() == []
    assert {t: deltalake.DeltaTable(str(root / t)).version() for t in versions} == versions


def test_the_rollback_recipe_of_the_deploy_guide(spark, lake, tmp_path, capsys):
    """docs/deploy.md's "Roll back a bad day", run as written (the version it names replaced by the lake's last good
    one): silver back to that version, gold equal to a gold table built afresh from it."""
    import re
    import shlex

    root, conf, job = lake
    guide = (Path(__file__).resolve().parents[1] / "docs" / "deploy.md").read_text()
    section = guide[guide.index("## 7. Roll back"):]
    block = section[section.index("```bash") + len("```bash"):section.index("```", section.index("```bash") + 7)]
    commands = [shlex.split(line.split("#")[0]) for line in block.strip().splitlines()]
    assert [c[:2] for c in commands] == [["lakehouse", "history"], ["lakehouse", "read"],
                                         ["lakehouse", "restore"], ["lakehouse", "run"]]
    good = deltalake.DeltaTable(str(root / "silver/sales")).version()
    named = {re.sub(r"\D", "", w) for c in commands for w in c if re.fullmatch(r"\d+", w) and w != "10"}
    # a bad load: rows of day 3 changed at the source
    raw = root / f"raw/sales/date={END}/sales.csv"
    text = raw.read_text(encoding="latin-1").splitlines()
    cells = text[1].split(",")
    cells[4] = "55"
    raw.write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n", encoding="latin-1")
    assert not any(r.failed for r in job.run_pending())
    assert deltalake.DeltaTable(str(root / "silver/sales")).version() > good
    args = ["--lake-root", str(root), "--conf-dir", str(conf), "--engine", "rust"]
    for command in commands:
        argv = [str(good) if w in named else w for w in command[1:]]
        assert main([*argv, *args]) == 0, argv
    capsys.readouterr()
    silver = deltalake.DeltaTable(str(root / "silver/sales"))
    assert silver.to_pyarrow_table().sort_by("transaction_id") == \
        deltalake.DeltaTable(str(root / "silver/sales"), version=good).to_pyarrow_table().sort_by("transaction_id")
    assert gold_of(root) == gold_from_scratch(spark, root, conf, tmp_path / "scratch")


@pytest.mark.jvm
def test_the_jvm_engine_follows_a_delete_made_with_spark_sql(spark, tmp_path):
    """The production engine: a lake it loaded, a row deleted from silver with Spark SQL (an untagged commit),
    then `--pending`: gold recomputed for that date, equal to gold built afresh from silver."""
    from tests.conftest import require_jvm

    require_jvm(spark)
    root = tmp_path / "lake"
    RetailGenerator(root, days=3, rows_per_day=120, seed=23, end_date=END, products=20, customers=30).write()
    conf = mini_conf(tmp_path)
    job = DailyJob(select_engine(spark, LakeLayout(str(root)), "jvm"), load_catalog(conf))
    assert not any(r.failed for r in job.run_pending())
    day = DAYS[0]
    victim = spark.read.format("delta").load(str(root / "silver/sales")) \
        .where(f"transaction_date = '{day}'").orderBy("transaction_id").first()["transaction_id"]
    spark.sql(f"DELETE FROM delta.`{root / 'silver/sales'}` WHERE transaction_id = '{victim}'")
    results = job.run_pending()
    assert "DELETE" in notes(results), notes(results)
    assert [g.dates for r in results for g in r.golds if g.table == "daily_sales_summary"] == [[day]]
    assert gold_of(root) == gold_from_scratch(spark, root, conf, tmp_path / "scratch")
    assert job.run_pending() == []


TIER_SPEC = """\
name: sales_by_tier
description: Sales by customer tier
from: sales
date_column: transaction_date
joins:
  - {table: customers, on: [customer_id], how: left}
group_by: [transaction_date, customer_tier]
measures:
  transactions: count(*)
  revenue: sum(net_amount)
target:
  keys: [transaction_date, customer_tier]
  partition_by: [transaction_date]
"""


def test_dimension_changes_arriving_on_a_later_day_equal_a_rebuild_from_raw(spark, tmp_path):
    """A product's category and cost, and a customer's tier, change in a later day's raw files (no sales that
    day): `--pending` recomputes the gold dates whose facts reference them, and silver and gold equal a lake built
    from the same raw files in one run."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "lake"
    RetailGenerator(root, days=3, rows_per_day=120, seed=29, end_date=END, products=20, customers=30).write()
    conf = mini_conf(tmp_path)
    shutil.copy(Path(__file__).resolve().parents[1] / "conf" / "datasets" / "customers.yaml", conf / "datasets")
    (conf / "aggregations" / "sales_by_tier.yaml").write_text(TIER_SPEC)
    # the products' current versions joined (not as of the sale's time): a later change reaches every date
    summary = conf / "aggregations" / "daily_sales_summary.yaml"
    summary.write_text(summary.read_text().replace(", as_of: transaction_timestamp", ""))
    catalog = load_catalog(conf)
    job = DailyJob(select_engine(spark, LakeLayout(str(root)), "rust"), catalog)
    assert not any(r.failed for r in job.run_pending())
    # in a fixed order (a table's file order is not), so the product and customer picked are the same every time
    sales = sorted(deltalake.DeltaTable(str(root / "silver/sales")).to_pyarrow_table().to_pylist(),
                   key=lambda r: r["transaction_id"])
    customers_held = {r["customer_id"] for r in
                      deltalake.DeltaTable(str(root / "silver/customers")).to_pyarrow_table().to_pylist()}
    product = sales[0]["product_id"]
    customer = next(r["customer_id"] for r in reversed(sales) if r["customer_id"] in customers_held)
    later = END + dt.timedelta(days=1)
    # the product as its last raw record had it, with a new category and cost, updated on the later day
    lines = [line for f in sorted((root / "raw/products").glob("date=*/products.json"))
             for line in f.read_text().splitlines() if f'"product_id": "{product}"' in line]
    record = json.loads(lines[-1])
    record.update(category="garden", last_updated=f"{later} 09:00:00",
                  pricing={**record["pricing"], "cost_price": round(record["pricing"]["cost_price"] * 0.5, 2)})
    (root / f"raw/products/date={later}").mkdir()
    (root / f"raw/products/date={later}/products.json").write_text(json.dumps(record) + "\n")
    customers = pq.read_table(sorted((root / "raw/customers").rglob("*.parquet"))[0])
    # the customer as silver's current version holds it (a raw record may be one the checks quarantined; silver
    # keeps every version of a customer: history scd2), with another tier
    (held,) = [r for r in deltalake.DeltaTable(str(root / "silver/customers")).to_pyarrow_table().to_pylist()
               if r["customer_id"] == customer and r["is_current"]]
    held = {c: held[c] for c in customers.schema.names}
    rows = [{**held, "customer_tier": "platinum" if held["customer_tier"] != "platinum" else "bronze"}]
    folder = root / f"raw/customers/year={later:%Y}/month={later:%m}/day={later:%d}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=customers.schema), folder / "customers.parquet")

    results = job.run_pending()
    assert not any(r.failed for r in results), [r.notes for r in results]
    golds = {g.table: g.dates for r in results for g in r.golds}
    assert set(golds["daily_sales_summary"]) >= {r["transaction_date"] for r in sales if r["product_id"] == product}
    assert set(golds["sales_by_tier"]) >= {r["transaction_date"] for r in sales if r["customer_id"] == customer}

    rebuilt = tmp_path / "rebuilt"
    shutil.copytree(root / "raw", rebuilt / "raw")
    again = DailyJob(select_engine(spark, LakeLayout(str(rebuilt)), "rust"), catalog)
    assert not any(r.failed for r in again.run_pending())
    ours = lake_rows(root, ("silver", "gold"))
    theirs = {t: [r.replace(str(rebuilt), str(root)) for r in rows] for t, rows in
              lake_rows(rebuilt, ("silver", "gold")).items()}
    assert ours == theirs
    tiers = {json.loads(r)["customer_tier"] for r in ours["gold/sales_by_tier"]}
    assert rows[0]["customer_tier"] in tiers
    assert any('"category": "garden"' in r for r in ours["gold/daily_sales_summary"])


def test_a_join_brings_the_columns_it_selects_under_its_prefix(spark):
    """`select:` and `prefix:` of a join: only the chosen columns of the joined table arrive, under their prefixed
    names, so a name the fact has too is no longer lost."""
    from lakehouse.pipeline.gold import aggregate
    from lakehouse.specs.aggregation import AggregationSpec

    facts = spark.createDataFrame([("s1", "p1", "fact's own", 2, dt.date(2024, 6, 1))],
                                  "sale string, product_id string, name string, qty int, day date")
    products = spark.createDataFrame([("p1", "Widget", "tools", 3.5)],
                                     "product_id string, name string, category string, cost double")
    spec = AggregationSpec.model_validate({
        "name": "by_product", "from": "sales", "date_column": "day",
        "joins": [{"table": "products", "on": ["product_id"], "prefix": "p_", "select": ["name", "category"]}],
        "group_by": ["day", "name", "p_name", "p_category"], "measures": {"units": "sum(qty)"}})
    (row,) = aggregate(spec, facts, {"products": products}).collect()
    assert row.asDict() == {"day": dt.date(2024, 6, 1), "name": "fact's own", "p_name": "Widget",
                            "p_category": "tools", "units": 2}
