"""Every kind of row check, dataset check and cleaning step has a row in docs/rules.md whose example parses into
that kind, and an implementation that handles the example. The row checks' table is written from the check
registry (tools/rules_table.py); each registered check's example is run on rows that pass and rows that fail."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import typing

import pytest
import yaml
from pydantic import TypeAdapter

from lakehouse.rules import dataset_checks
from lakehouse.rules.checks import compile_check
from lakehouse.rules.cleaning import step_transform
from lakehouse.specs import models as m
from lakehouse.specs import vocabulary
from lakehouse.specs.steps import _tag_step
from tests.conftest import REPO

DOCS = (REPO / "docs" / "rules.md").read_text()


def kinds(union) -> dict[str, type]:
    """Each name the union accepts (`check:`/`step:` value, aliases included) -> its model."""
    members = typing.get_args(typing.get_args(union)[0])
    out = {}
    for model in members:
        field = model.model_fields.get("check") or model.model_fields["step"]
        for name in typing.get_args(field.annotation):
            out[name] = model
    return out


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
DATASET_CHECKS = kinds(m.DatasetCheck)
STEPS = kinds(m.CleaningStep)
NOW = dt.datetime(2024, 7, 1)


def test_every_kind_is_documented_and_every_documented_kind_exists():
    assert set(documented("Row checks")) == set(ROW_CHECKS)
    assert set(documented("Dataset checks")) == set(DATASET_CHECKS)
    assert set(documented("Cleaning steps")) == set(STEPS)


def test_the_row_check_table_is_the_registrys():
    """docs/rules.md's row-check table is what tools/rules_table.py writes from the registry."""
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


@pytest.mark.parametrize("name", sorted(DATASET_CHECKS))
def test_dataset_check_example_is_judged(name):
    (text, *_) = documented("Dataset checks")[name]
    check = TypeAdapter(m.DatasetCheck).validate_python(yaml.safe_load(text))
    assert isinstance(check, DATASET_CHECKS[name])
    rule = dataset_checks.rule_for(check)
    context = dataset_checks.DatasetCheckContext(
        valid=10, batch=10, rows_read=10, aggregate=None, raw_columns=["transaction_id"], run_date=NOW.date(),
        previous_rows=8)
    result = rule.judge(check, context)
    assert isinstance(result.passed, bool) and result.threshold


@pytest.mark.parametrize("name", sorted(STEPS))
def test_cleaning_step_example_has_a_transform(name, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_HASH_KEY", "test-key")
    examples = [e for e in documented("Cleaning steps")[name] if e.startswith("- ")]
    assert examples, f"no example for {name}"
    for text in examples:
        (item,) = yaml.safe_load(text)
        (written,) = item
        # a row documenting two steps (`upper` / `lower`) shows one example: the other step takes its argument
        step = TypeAdapter(m.CleaningStep).validate_python(_tag_step({name: item[written]}))
        assert isinstance(step, STEPS[name])
        assert callable(step_transform(step))
        assert isinstance(step.leaves(["a", "b"]), list)
