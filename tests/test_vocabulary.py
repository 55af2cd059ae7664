"""Every kind of row check, dataset check and cleaning step has a row in docs/rules.md whose example parses into
that kind, and an implementation that handles the example. The row checks' table is written from the check
registry (tools/rules_table.py); each registered check's example is run on rows that pass and rows that fail."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import pytest
import yaml
from pydantic import TypeAdapter

from lakehouse.rules.checks import compile_check
from lakehouse.rules.cleaning import step_transform
from lakehouse.specs import dataset_checks as dataset_vocabulary
from lakehouse.specs import models as m
from lakehouse.specs import steps as step_vocabulary
from lakehouse.specs import vocabulary
from lakehouse.specs.steps import tag_step
from tests.conftest import REPO

DOCS = (REPO / "docs" / "rules.md").read_text()


def documented(section: str) -> dict[str, list[str]]:
    """Name -> the YAML examples of its row in the table under `## section` (names: `a` (alias `b`), `a` / `b`)."""
    body = DOCS.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        names = re.findall(r"`([a-z_]+)`", cells[0])
        examples = re.findall(r"`([-{][^`]*)`", cells[-1])
        for name in names:
            rows[name] = examples
    return rows


ROW_CHECKS = {name: kind.model for name, kind in vocabulary.REGISTRY.kinds.items()}
DATASET_CHECKS = {name: kind.model for name, kind in dataset_vocabulary.REGISTRY.kinds.items()}
STEPS = {name: kind.model for name, kind in step_vocabulary.REGISTRY.kinds.items()}
NOW = dt.datetime(2024, 7, 1)


def test_every_kind_is_documented_and_every_documented_kind_exists():
    assert set(documented("Row checks")) == set(ROW_CHECKS)
    assert set(documented("Dataset checks")) == set(DATASET_CHECKS)
    assert set(documented("Cleaning steps")) == set(STEPS)


def test_the_check_tables_are_the_registries():
    """docs/rules.md's row-check and dataset-check tables are what tools/rules_table.py writes from the
    registries."""
    done = subprocess.run([sys.executable, str(REPO / "tools" / "rules_table.py"), "--check"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# per check: its documented example (the first), values of the checked column that pass and values that fail; a
# null passes every check but not_null and not_empty
VALUES = {
    "not_null": ({"a": "x", "b": "y"}, [{"a": None, "b": "y"}]),
    "not_empty": ({"name": "x"}, [{"name": "  "}, {"name": None}]),
    "range": ({"quantity": 1}, [{"quantity": 0}, {"quantity": 1001}]),
    "in_set": ({"tier": "gold"}, [{"tier": "bronze"}]),
    "not_in_set": ({"store_id": "S1"}, [{"store_id": "TEST"}]),
    "regex": ({"id": "C12"}, [{"id": "X12"}, {"id": "C"}]),
    "email": ({"email": "a.b@example.org"}, [{"email": "a@b"}, {"email": "a@example.org\n"}]),
    "phone": ({"phone": "+1 (555) 010-9999"}, [{"phone": "12345"}]),
    "length": ({"code": "ab"}, [{"code": "a"}, {"code": "abcdefghi"}]),
    "not_in_future": ({"registration_date": "2024-06-30 23:00:00"}, [{"registration_date": "2024-07-01 01:00:00"}]),
    "not_older_than": ({"event_time": "2024-06-15 00:00:00"}, [{"event_time": "2024-05-01 00:00:00"}]),
    "parseable": ({"born": "31/12/1990"}, [{"born": "1990-12-31"}]),
    "castable": ({"amount": "12.50"}, [{"amount": "twelve"}]),
    "compare": ({"start_date": "2024-01-01", "end_date": "2024-01-02"},
                [{"start_date": "2024-01-03", "end_date": "2024-01-02"}]),
    "expression": ({"qty": 1, "type": "sale"}, [{"qty": 0, "type": "sale"}]),
}


@pytest.mark.parametrize("name", sorted({k.names[0] for k in vocabulary.REGISTRY.unique()} - {"exists_in", "unique"}))
def test_each_row_check_fails_the_rows_it_names_and_passes_the_others(spark, name):
    """The example of each registered check, compiled as the pipeline compiles it, on one passing row, the failing
    rows, and (for a column check) a row whose columns are null."""
    kind = vocabulary.REGISTRY.kinds[name]
    check = TypeAdapter(m.RowCheck).validate_python(yaml.safe_load(kind.examples[0]))
    assert isinstance(check, kind.model)
    good, bad = VALUES[name]
    rows = [good, *bad] + ([dict.fromkeys(good)] if kind.per_column else [])
    compiled = compile_check(check, 0, NOW)
    assert compiled and all(c.message for c in compiled)
    frame = spark.createDataFrame([{k: None if v is None else str(v) for k, v in r.items()} for r in rows])
    flags = frame.selectExpr(*[f"{c.failed()} AS f{i}" for i, c in enumerate(compiled)]).collect()
    failed = [any(row) for row in flags]
    nulls_fail = name in ("not_null", "not_empty")
    assert failed == [False] + [True] * len(bad) + ([nulls_fail] if kind.per_column else []), (name, failed)


# per dataset check: rows of a batch that pass its documented example and rows that fail it (`_has_error`: the row
# failed an error-level row check, so it is not a valid row), and the raw columns and rows of the previous run
BATCHES = {
    "completeness": ([{"customer_id": f"C{i}"} for i in range(20)] + [{"customer_id": None, "_has_error": True}],
                     [{"customer_id": f"C{i}"} for i in range(9)] + [{"customer_id": None}]),
    "uniqueness": ([{"email": f"{i}@x.org"} for i in range(100)] + [{"email": "0@x.org", "_has_error": True}],
                   [{"email": f"{i % 50}@x.org"} for i in range(100)]),
    "freshness": ([{"transaction_timestamp": "2024-07-01 12:00:00"},
                   {"transaction_timestamp": "2024-07-09 00:00:00", "_has_error": True}],
                  [{"transaction_timestamp": "2024-06-29 00:00:00"}]),
    "statistic": ([{"quantity": 5}, {"quantity": 10}, {"quantity": 900, "_has_error": True}],
                  [{"quantity": 50}, {"quantity": 60}]),
    "row_count": ([{"x": 1}], [{"x": 1, "_has_error": True}]),
    "row_count_change": ([{"x": i} for i in range(10)], [{"x": i} for i in range(20)]),
    "required_columns": ([{"transaction_id": "T1", "quantity": 1}], [{"transaction_id": "T1"}]),
}


def judged(spark, check, rows) -> bool:
    """`check` judged on a batch of `rows` as the pipeline judges it: its aggregate computed by Spark over them."""
    names = sorted({k for r in rows for k in r} - {"_has_error"})
    frame = spark.createDataFrame([tuple(None if r.get(c) is None else str(r[c]) for c in names)
                                   + (bool(r.get("_has_error")),) for r in rows],
                                  ", ".join(f"`{c}` string" for c in names) + ", _has_error boolean")
    frame = frame.withColumns({c: frame[c].cast("double") for c in names if c == "quantity"})
    sql = dataset_vocabulary.aggregate_sql(check, "NOT _has_error")
    valid = sum(not r.get("_has_error") for r in rows)
    batch = dataset_vocabulary.Batch(
        valid=valid, batch=valid, rows_read=len(rows), aggregate=None if sql is None else frame.selectExpr(sql).first()[0],
        raw_columns=names, run_date=NOW.date(), previous_rows=8)
    return dataset_vocabulary.judge(check, batch).passed


@pytest.mark.parametrize("name", sorted(k.names[0] for k in dataset_vocabulary.REGISTRY.unique()))
def test_each_dataset_check_fails_the_batch_it_names_and_passes_the_other(spark, name):
    """The documented example of each registered dataset check, its aggregate computed over a batch that should
    pass and one that should fail; invalid rows do not count."""
    kind = dataset_vocabulary.REGISTRY.kinds[name]
    (text, *_) = documented("Dataset checks")[name]
    assert text == kind.examples[0]
    check = TypeAdapter(m.DatasetCheck).validate_python(yaml.safe_load(text))
    assert isinstance(check, kind.model)
    good, bad = BATCHES[name]
    assert (judged(spark, check, good), judged(spark, check, bad)) == (True, False)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_each_cleaning_step_does_what_its_sample_says(spark, name, monkeypatch):
    """The documented example of each registered step, parsed as a spec would be, turns its sample's rows into the
    sample's result, and leaves the columns it says it leaves. A step that did nothing, or the wrong thing, fails."""
    kind = step_vocabulary.REGISTRY.kinds[name]
    (text,) = documented("Cleaning steps")[name]
    assert text == kind.examples[0]
    (item,) = yaml.safe_load(text)
    sample = kind.sample
    for key, value in sample.env.items():
        monkeypatch.setenv(key, value)
    step = TypeAdapter(m.CleaningStep).validate_python(tag_step(item))
    assert isinstance(step, kind.model)
    before = spark.createDataFrame(sample.before, sample.schema)
    out = before.transform(step_transform(step))
    assert sorted((r.asDict() for r in out.collect()), key=repr) == sorted(sample.after, key=repr)
    # the business columns (a leading `_` marks the job's own, like dedup's `_superseded`)
    assert [c for c in out.columns if not c.startswith("_")] == step.leaves(before.columns)
