"""What validate-config calls ok runs: every column reference and SQL fragment is resolved before data moves."""

from __future__ import annotations

import pytest

from lakehouse.cli import main
from tests.conftest import CONF

# (file under conf/, text to replace, replacement, field reported, words of the message)
CASES = [
    ("datasets/inventory.yaml", "{check: in_set, column: update_type",
     "{check: range, column: quantity_change, min: one, max: 1000}\n  - {check: in_set, column: update_type",
     "checks.0.min", "'one' is not a number (column quantity_change is int)"),
    ("datasets/sales.yaml", "{check: range, column: discount_percent,", "{check: range, column: discount_pct,",
     "checks.1.column", "unknown column 'discount_pct' (did you mean 'discount_percent'?)"),
    ("aggregations/daily_inventory_movement.yaml", "net_quantity_change: sum(quantity_change)",
     "net_quantity_change: sum(quantity_chang)", "measures.net_quantity_change",
     "unknown column 'quantity_chang' (did you mean 'quantity_change'?)"),
    ("datasets/products.yaml", 'cost_price: "pricing.cost_price"', 'cost_price: "(pricing.cost_price"',
     "cleaning.0.derive.cost_price", "not a SQL expression"),
    ("aggregations/daily_inventory_movement.yaml", "group_by: [update_date, store_id, product_id]",
     "group_by: [update_date, store_ids, product_id]", "group_by",
     "unknown column 'store_ids' (did you mean 'store_id'?)"),
    ("datasets/sales.yaml", "{check: not_null, column: customer_id, criticality: warn, name: anonymous_sale}",
     "{check: not_null, column: customer_id, criticality: warn, name: anonymous_sale, filter: \"stor_id = 'x'\"}",
     "checks.4.filter", "unknown column 'stor_id'"),
    ("datasets/campaigns.yaml", "{check: compare, left: clicks, op: \"<=\", right: impressions",
     "{check: compare, left: clicks, op: \"<=\", right: impresions", "checks.2.right",
     "unknown column 'impresions' (did you mean 'impressions'?)"),
    ("datasets/inventory.yaml", "expression: \"NOT (update_type IN ('restock', 'return') AND quantity_change < 0)\"",
     "expression: \"no_such_function(update_type)\"", "checks.2.expression", "no_such_function"),
    ("datasets/sales.yaml", "ref: products.product_id}", "ref: products.product_key}", "checks.2.ref",
     "products.product_key: unknown column 'product_key'"),
    ("datasets/sales.yaml", 'pattern: "^CUST\\\\d{5}$"', 'pattern: "^(?P<id>CUST\\\\d{5})$"', "checks.3.pattern",
     "not a Java regular expression"),
    ("datasets/inventory.yaml", "values: [restock, sale, adjustment, return]}",
     "values: [restock, sale, adjustment, return]}\n  - {check: in_set, column: quantity_change, values: [one, 2]}",
     "checks.1.values", "'one' is not a number"),
    ("datasets/customers.yaml", "{check: not_in_future, column: registration_date}",
     "{check: not_in_future, column: customer_tier_count}", "checks.3.column", "unknown column"),
    ("datasets/customers.yaml", "{check: completeness, column: email, min: 0.9, action: warn}",
     "{check: completeness, column: e_mail, min: 0.9, action: warn}", "dataset_checks.0.column",
     "unknown column 'e_mail' (did you mean 'email'?)"),
    ("datasets/customers.yaml", "{check: completeness, column: email, min: 0.9, action: warn}",
     "{check: statistic, column: email, stat: mean, min: 1}", "dataset_checks.0.column",
     "statistic needs a numeric column; email is string"),
    ("datasets/sales.yaml", "partition_by: [transaction_date]",
     "partition_by: [transaction_date]\n  merge_update_when: \"s.transaction_ts > t.transaction_timestamp\"",
     "target.merge_update_when", "unknown column 'transaction_ts'"),
    ("datasets/sales.yaml", "- trim: [store_id, customer_id, product_id]",
     "- trim: [store_id, customer, product_id]", "cleaning.0.trim", "unknown column 'customer'"),
    ("aggregations/daily_sales_summary.yaml", "{table: products, on: [product_id], how: left,",
     "{table: products, on: [productid], how: left,", "joins.0.on", "unknown column 'productid'"),
    ("aggregations/daily_sales_summary.yaml", "profit: revenue - cost", "profit: revenue - costs",
     "derived.profit", "unknown column 'costs' (did you mean 'cost'?)"),
    ("datasets/customers.yaml", "{check: not_in_future, column: registration_date}",
     "{check: range, column: registration_date, min: yesterday}", "checks.3.min",
     "'yesterday' is not a date (YYYY-MM-DD"),
    ("datasets/sales.yaml", "- fill_null: {discount_percent: 0.0}", "- fill_null: {discount: 0.0}",
     "cleaning.2.fill_null.discount", "unknown column 'discount'"),
    ("datasets/products.yaml", "{check: not_null, columns: [name, category]}",
     "{check: length, column: cost_price, max: 5}", "checks.0.column",
     "length needs a string column; cost_price is decimal(10,2)"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0].split('/')[-1]}:{c[3]}" for c in CASES])
def test_bad_spec_fails_validate_config_with_file_line_field(case, conf_copy, capsys, spark):
    name, old, new, field, words = case
    path = conf_copy / name
    text = path.read_text()
    assert old in text, old
    edited = text.replace(old, new, 1)
    path.write_text(edited)
    offset = edited.index(new)
    lines = new.splitlines()
    line = edited[:offset].count("\n") + 1 + max((i for i, ln in enumerate(lines) if field.split(".")[-1] in ln),
                                                  default=0)
    assert main(["validate-config", "--conf-dir", str(conf_copy)]) == 2
    err = capsys.readouterr().err
    problems = [ln for ln in err.splitlines() if ln.startswith(str(path))]
    assert len(problems) == 1, err
    location, _, rest = problems[0].partition(f": {field}: ")
    assert rest, (field, problems[0])
    assert location.rsplit(":", 1)[1] == str(line), (line, problems[0])
    assert words in rest, problems[0]


def test_the_shipped_conf_resolves_without_a_spark_job(spark, capsys):
    """Resolution is analysis only: Spark plans every fragment against empty frames and runs no job."""
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup())
    assert main(["validate-config", "--conf-dir", str(CONF)]) == 0
    assert set(tracker.getJobIdsForGroup()) == before
    assert "ok" in capsys.readouterr().out
