"""What users read, pinned word for word: spec errors, one quarantine record per check, the run summary, `plan`
and `quality` (files under tests/golden/; see golden_text.py to update them)."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from lakehouse import report
from lakehouse.api import Lakehouse, Settings
from lakehouse.errors import SpecError
from lakehouse.rules.checks import ERRORS, evaluate
from lakehouse.sample.retail import RetailGenerator
from lakehouse.specs import load_catalog
from lakehouse.specs import models as m
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import CONF
from tests.golden_text import GOLDEN, assert_golden, normalized

BROKEN_SPECS = {
    "datasets/orders.yaml": """\
        name: orders
        source: {format: csv, path: raw/orders}
        schema: {order_id: string, amount: "decimal(10,2)", email: string, qty: int, placed: string}
        keys: [order_id]
        checks:
          - {check: not_nul, column: order_id}
          - {check: range, column: amount}
          - {check: regex, column: email, pattern: "(unclosed"}
          - {check: length, column: emial, max: 5}
          - {check: range, column: qty, min: 1, critcality: warn}
          - {check: exists_in, column: email, ref: customers}
        dataset_checks:
          - {check: completeness, column: amount, min: 1.5}
        """,
    "datasets/lines.yaml": """\
        name: lines
        source: {format: xml, path: raw/lines, layout: "day={day}"}
        schema: {line_id: strin}
        keys: [line]
        """,
    "aggregations/totals.yaml": """\
        name: totals
        source_dataset: orders
        group_by: [placed_day]
        date_column: placed_day
        metrics:
          - {name: revenue, expr: "sum(amount"}
        """,
}


def test_spec_errors(tmp_path):
    for name, text in BROKEN_SPECS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    with pytest.raises(SpecError) as caught:
        load_catalog(tmp_path)
    assert_golden("spec_errors.txt", normalized(str(caught.value), conf=tmp_path))


# one failing row per row check; `id` names the check the row is meant to fail
ROW_CHECKS = [
    {"check": "not_null", "column": "name"},
    {"check": "not_empty", "column": "code"},
    {"check": "range", "column": "price", "min": 0},
    {"check": "range", "column": "qty", "min": 1, "max": 10, "inclusive": False},
    {"check": "between", "column": "discount", "min": 0, "max": 0.5},
    {"check": "in_set", "column": "status", "values": ["new", "paid"]},
    {"check": "not_in_set", "column": "country", "values": ["XX"]},
    {"check": "regex", "column": "sku", "pattern": "^SKU-[0-9]+$"},
    {"check": "email", "column": "email"},
    {"check": "phone", "column": "phone"},
    {"check": "length", "column": "code", "max": 5},
    {"check": "length", "column": "sku", "min": 3},
    {"check": "length", "column": "country", "min": 2, "max": 2},
    {"check": "exists_in", "column": "parent", "ref": "batch.id"},
    {"check": "not_in_future", "column": "placed_at"},
    {"check": "not_older_than", "column": "placed_at", "days": 365},
    {"check": "unique", "columns": ["email"], "criticality": "warn"},
    {"check": "parseable", "column": "day", "formats": ["yyyy-MM-dd"]},
    {"check": "castable", "column": "amount_text", "type": "int"},
    {"check": "compare", "left": "discount", "op": "<", "right": "price"},
    {"check": "expression", "expression": "qty < 100", "name": "qty_sane"},
    {"check": "range", "column": "price", "max": 1000, "name": "price_cap", "message": "price is too high"},
]
SCHEMA = ("id string, name string, code string, price double, qty int, discount double, status string, "
          "country string, sku string, email string, phone string, parent string, placed_at timestamp, "
          "day string, amount_text string")
NOW = dt.datetime(2024, 7, 1, 12, 0)
GOOD = dict(name="n", code="ABC", price=10.0, qty=5, discount=0.1, status="new", country="DE", sku="SKU-1",
            email=None, phone="+4930123456", parent=None, placed_at=dt.datetime(2024, 6, 30, 8), day="2024-06-30",
            amount_text="12")
BAD = [
    ("not_null", dict(name=None)), ("not_empty", dict(code="  ")), ("range_min", dict(price=-1.0)),
    ("range_exclusive", dict(qty=10)), ("between", dict(discount=0.75)), ("in_set", dict(status="void")),
    ("not_in_set", dict(country="XX")), ("regex", dict(sku="sku-9")), ("email", dict(email="not-an-email")),
    ("phone", dict(phone="call me")), ("length_max", dict(code="ABCDEFG")), ("length_min", dict(sku="S")),
    ("length_both", dict(country="DEU")), ("exists_in", dict(parent="nobody")),
    ("future", dict(placed_at=dt.datetime(2024, 7, 3))), ("old", dict(placed_at=dt.datetime(2020, 1, 1))),
    ("unique_a", dict(email="dup@example.com")), ("unique_b", dict(email="dup@example.com")),
    ("parseable", dict(day="30/06/2024")), ("castable", dict(amount_text="twelve")),
    ("compare", dict(discount=20.0, price=15.0)), ("expression", dict(qty=500)), ("custom", dict(price=5000.0)),
]


def test_one_quarantine_record_per_check(spark):
    columns = [c.split()[0] for c in SCHEMA.split(", ")]
    spec = m.DatasetSpec.model_validate({
        "name": "t", "source": {"format": "csv", "path": "raw/t"},
        "schema": {c.split()[0]: c.split()[1].replace("double", "double") for c in SCHEMA.split(", ")},
        "keys": ["id"], "checks": ROW_CHECKS})
    rows = [tuple({"id": name, **GOOD, **changes}[c] for c in columns) for name, changes in BAD]
    rows.append(tuple({"id": "good", **GOOD}[c] for c in columns))
    out = spark.createDataFrame(rows, SCHEMA).transform(evaluate(spec, {}, now=NOW)).select("id", ERRORS).collect()
    lines = []
    for r in sorted(out, key=lambda r: [n for n, _ in BAD + [("good", {})]].index(r.id)):
        errors = sorted(r[ERRORS], key=lambda e: (e.check, e.column or ""))
        shown = "; ".join(f"{e.check}({e.column or '-'}, {e.criticality}): {e.message}" for e in errors)
        lines.append(f"{r.id}: {shown or 'passes'}")
    assert_golden("quarantine_messages.txt", "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def small_lake(spark, tmp_path_factory):
    """One generated day with a corrupt file and a stray file, run once; the plan taken before the run."""
    root = tmp_path_factory.mktemp("golden") / "lake"
    day = dt.date(2024, 7, 1)
    RetailGenerator(root, days=1, rows_per_day=40, seed=11, end_date=day, products=8, customers=12,
                    stores=3).write()
    partition = root / "raw" / "sales" / f"date={day}"
    (partition / "late.csv.gz").write_bytes(gzip.compress(b"transaction_id,store_id\nT1,S1\n")[:20])
    (partition / "NOTES.md").write_text("not data\n")
    conf = root.parent / "conf"
    shutil.copytree(CONF, conf)
    settings = Settings(lake_root=str(root), engine="rust", conf_dir=str(conf))
    lake = Lakehouse(settings, engine=select_engine(spark, LakeLayout(str(root)), "rust"))
    plan = report.plan_text(lake.plan(day, gold_dates=True))
    results = lake.run([day])
    return lake, root, day, plan, results


def test_run_summary(small_lake):
    lake, root, _, _, results = small_lake
    assert_golden("run_summary.txt", normalized(report.run_summary(results[0]), lake=root))


def test_plan(small_lake):
    _, root, _, plan, _ = small_lake
    assert_golden("plan.txt", normalized(plan, lake=root))


def test_quality(small_lake):
    lake, root, day, _, _ = small_lake
    assert_golden("quality.txt", normalized(report.quality_report(*lake.quality(day)), lake=root))


def test_missing_tables_and_versions_exit_2_with_one_line(small_lake, capsys):
    from lakehouse.cli import main

    lake, root, _, _, _ = small_lake
    common = ["--lake-root", str(root), "--engine", "rust", "--conf-dir", lake.settings.conf_dir]
    assert main(["read", "silver/salez", *common]) == 2
    assert main(["history", "silver/nosuch", *common]) == 2
    assert main(["read", "silver/sales", "--as-of-version", "99", *common]) == 2
    err = capsys.readouterr().err
    assert normalized(err, lake=root) == (
        "error: no Delta table at <lake>/silver/salez\n"
        "error: no Delta table at <lake>/silver/nosuch\n"
        "error: <lake>/silver/sales has no version 99 (versions 0..0)\n")


def test_plan_pending_after_the_run(small_lake):
    lake, root, _, _, _ = small_lake
    assert normalized(report.plan_text(lake.plan(pending=True)), lake=root) == (
        "plan for --pending (engine rust, lake <lake>); nothing is written\n"
        "  nothing pending: every raw file is ingested and unchanged\n")
    assert not (root / "_staging" / "plan").exists()  # the plan's scratch files are swept


def _cli_without_java(args: list[str], root, conf, engine: str = "rust") -> subprocess.CompletedProcess[str]:
    """The command in a fresh interpreter that cannot start a JVM (no java on PATH, no JAVA_HOME)."""
    env = {"PATH": os.path.dirname(sys.executable), "HOME": os.environ.get("HOME", "/tmp"),
           "LAKEHOUSE_ROOT": str(root), "LAKEHOUSE_CONF_DIR": str(conf), "LAKEHOUSE_ENGINE": engine,
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "lakehouse.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_metadata_commands_need_no_jvm(small_lake):
    lake, root, day, _, results = small_lake
    conf = lake.settings.conf_dir
    run_id = results[0].run_id
    outputs = {}
    for args in (["history", "silver/sales"], ["read", "gold/daily_sales_summary", "--limit", "3"],
                 ["quality", "--date", str(day)], ["runs"], ["runs", "show", run_id]):
        done = _cli_without_java(args, root, conf)
        assert done.returncode == 0, (args, done.stderr)
        outputs[args[0] if args[0] != "runs" or len(args) == 1 else "runs show"] = done.stdout
    assert outputs["history"].splitlines()[1].split() == ["version", "time", "operation", "run", "id", "metrics"]
    assert "WRITE" in outputs["history"] and run_id in outputs["history"]
    assert outputs["read"].startswith(f"{root}/gold/daily_sales_summary: 3 row(s)")
    assert outputs["quality"] == report.quality_report(*lake.quality(day)) + "\n"
    (header, row) = outputs["runs"].splitlines()
    assert header.split()[:3] == ["run", "id", "run"] and row.split()[:3] == [run_id, str(day), "success"]
    assert_golden("runs_show.txt", normalized(outputs["runs show"], lake=root))
    missing = _cli_without_java(["runs", "show", "nosuch"], root, conf)
    assert (missing.returncode, missing.stderr) == (2, f"error: no run nosuch in {root}/_meta/runs\n")


def test_plan_listing_needs_no_jvm(small_lake):
    lake, root, day, _, _ = small_lake
    done = _cli_without_java(["plan", "--date", str(day)], root, lake.settings.conf_dir)
    assert done.returncode == 0, done.stderr
    lines = normalized(done.stdout, lake=root).splitlines()
    assert lines[0] == f"plan for run date {day} (engine rust, lake <lake>); nothing is written"
    assert "    recompute <lake>/gold/daily_sales_summary for the dates whose silver rows change (--gold-dates " \
           "lists them)" in lines
    # the same listing as the plan with gold dates, but for those lines
    with_dates = [line for line in (GOLDEN / "plan.txt").read_text().splitlines() if " recompute " not in line]
    assert [line for line in lines if " recompute " not in line] == with_dates
    pending = _cli_without_java(["plan", "--pending"], root, lake.settings.conf_dir)
    assert pending.returncode == 0 and "nothing pending" in pending.stdout, pending.stderr
    # a run with nothing pending finds out from the raw listing and the Delta logs (the jvm engine's, set
    # explicitly, starts its JVM to check its jars: tests/test_entrypoint.py)
    for engine in ("rust", "auto"):
        again = _cli_without_java(["run", "--pending"], root, lake.settings.conf_dir, engine)
        assert (again.returncode, again.stdout) == (0, "nothing pending: every raw file is ingested and "
                                                       "unchanged\n"), (engine, again.stdout, again.stderr)
