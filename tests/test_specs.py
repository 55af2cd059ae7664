"""Specs load into typed models before Spark starts; every problem names file, line and field."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lakehouse.cli import main
from lakehouse.specs import SpecError, load_catalog
from lakehouse.specs import models as m
from tests.conftest import CONF


def test_shipped_conf_loads_with_dependencies_first():
    catalog = load_catalog(CONF)
    assert set(catalog.datasets) == {"sales", "products", "customers", "inventory", "campaigns"}
    assert set(catalog.aggregations) == {"daily_sales_summary", "daily_inventory_movement"}
    order = [d.name for d in catalog.dataset_order()]
    assert order.index("products") < order.index("sales")
    assert order.index("products") < order.index("inventory")
    sales = catalog.datasets["sales"]
    assert isinstance(sales.checks[2], m.Reference) and sales.checks[2].ref_dataset == "products"
    assert sales.source_schema()["unit_price"].dataType.simpleString() == "decimal(10,2)"
    assert sales.required_columns() == ["transaction_id", "product_id", "transaction_timestamp"]
    assert "net_amount" in sales.output_columns() and "transaction_date" in sales.output_columns()


def test_the_specs_package_alone_loads_the_conf_in_a_fresh_interpreter():
    """`lakehouse.specs.load_catalog` as the first import of a process (a notebook, a script, the bench): the
    built-in cleaning steps, row checks and dataset checks are registered by the spec package itself, not by the
    Spark side that applies them."""
    code = ("import sys\nfrom lakehouse.specs import load_catalog\n"
            f"catalog = load_catalog({str(CONF)!r})\n"
            "sales = catalog.datasets['sales']\n"
            "print(sales.cleaning[0].step, sales.checks[0].check, sales.dataset_checks[0].check)\n"
            "print(sorted(m for m in sys.modules if m.startswith('lakehouse.rules')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["trim range row_count", "[]"]


def _write(conf, name, text):
    (conf / "datasets" / name).write_text(textwrap.dedent(text))


def _problems(conf) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_catalog(conf)
    return err.value.problems


def test_unknown_check_name_names_file_line_and_field(conf_copy):
    path = conf_copy / "datasets" / "sales.yaml"
    text = path.read_text().replace("{check: range, column: quantity", "{check: rnage, column: quantity")
    path.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "rnage" in ln)
    problems = _problems(conf_copy)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:{line}: checks.0: ")
    assert "'rnage'" in problems[0] and "not_null" in problems[0]


def test_wrong_type_and_unknown_field_are_both_reported(conf_copy):
    _write(conf_copy, "orders.yaml", """\
        name: orders
        source: {format: csv, path: raw/orders}
        schema:
          order_id: string not null
          amount: integr
        keys: [order_id]
        sequnce_by: amount
        """)
    problems = _problems(conf_copy)
    joined = "\n".join(problems)
    assert f"{conf_copy}/datasets/orders.yaml:5: schema.amount: " in joined and "unknown type 'integr'" in joined
    assert f"{conf_copy}/datasets/orders.yaml:7: sequnce_by: unknown field 'sequnce_by'; did you mean 'sequence_by'?" in joined


def test_cleaning_step_typo_and_bad_regex(conf_copy):
    _write(conf_copy, "orders.yaml", """\
        name: orders
        source: {format: json, path: raw/orders}
        schema: {order_id: string not null, code: string}
        keys: [order_id]
        cleaning:
          - trim: [code]
          - fil_null: {code: x}
        checks:
          - {check: regex, column: code, pattern: "([a-z"}
        """)
    joined = "\n".join(_problems(conf_copy))
    assert ":7: cleaning.1: " in joined and "'fil_null'" in joined
    assert ":9: checks.0" in joined and "invalid regular expression" in joined


def test_reference_to_unknown_dataset(conf_copy):
    path = conf_copy / "datasets" / "sales.yaml"
    path.write_text(path.read_text().replace("ref: products.product_id", "ref: prodcts.product_id"))
    problems = _problems(conf_copy)
    assert len(problems) == 1 and "unknown dataset 'prodcts'" in problems[0]
    assert problems[0].startswith(f"{path}:")


def test_keys_must_be_columns(conf_copy):
    path = conf_copy / "datasets" / "inventory.yaml"
    path.write_text(path.read_text().replace("keys: [update_id]", "keys: [update_key]"))
    joined = "\n".join(_problems(conf_copy))
    assert "keys names unknown column(s) ['update_key']" in joined


def test_yaml_syntax_error_has_a_line(conf_copy):
    (conf_copy / "aggregations" / "broken.yaml").write_text("name: x\nmeasures: {a: 1\n")
    problems = _problems(conf_copy)
    assert problems[0].startswith(f"{conf_copy}/aggregations/broken.yaml:") and "(yaml)" in problems[0]


def test_validate_config_exit_codes(conf_copy, capsys):
    assert main(["validate-config", "--conf-dir", str(CONF)]) == 0
    path = conf_copy / "datasets" / "customers.yaml"
    path.write_text(path.read_text().replace("criticality: warn}", "criticality: warning}", 1))
    assert main(["validate-config", "--conf-dir", str(conf_copy)]) == 2
    assert "customers.yaml" in capsys.readouterr().err


def test_run_with_broken_spec_exits_2_before_spark_starts(conf_copy, tmp_path):
    path = conf_copy / "datasets" / "sales.yaml"
    path.write_text(path.read_text().replace("quantity: int", "quantity: integer32"))
    # no java on PATH and no JAVA_HOME: a JVM that started would fail differently
    env = {"PATH": os.path.dirname(sys.executable), "HOME": os.environ.get("HOME", "/tmp"),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "lakehouse.cli", "run", "--date", "2024-01-01",
                           "--conf-dir", str(conf_copy), "--lake-root", str(tmp_path / "lake")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert f"{path}:" in proc.stderr and "schema" in proc.stderr and "integer32" in proc.stderr
    assert "SparkContext" not in proc.stderr and "JAVA" not in proc.stderr


def test_a_joined_column_that_clashes_is_a_spec_error_with_its_fix(conf_copy):
    """products' `name` beside a fact that has a `name` too would be lost: the join's line, the column, the fix;
    `prefix:` or `select:` settles it, and a `select:` of a column the joined table lacks is named."""
    sales = conf_copy / "datasets" / "sales.yaml"
    sales.write_text(sales.read_text().replace("  store_id: string\n", "  store_id: string\n  name: string\n"))
    agg = conf_copy / "aggregations" / "daily_sales_summary.yaml"
    text = agg.read_text()
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "{table: products" in ln)
    problems = _problems(conf_copy)
    assert problems == [f"{agg}:{line}: joins.0: joined column(s) name of products clash with those of sales; add "
                        "`prefix: prod_` to the join, or list the columns you need in `select:`"], problems
    agg.write_text(text.replace("how: left,", "how: left, prefix: p_,"))
    catalog = load_catalog(conf_copy)
    assert catalog.aggregations["daily_sales_summary"].joins[0].brought(["name", "product_id"]) == {"name": "p_name"}
    agg.write_text(text.replace("how: left,", "how: left, select: [category, cost_price, colour],"))
    (problem,) = _problems(conf_copy)
    assert problem.startswith(f"{agg}:{line}: joins.0.select: products has no column colour"), problem
    agg.write_text(text.replace("how: left,", "how: left, select: [category, cost_price],"))
    assert load_catalog(conf_copy).aggregations["daily_sales_summary"].joins[0].select == ["category", "cost_price"]
