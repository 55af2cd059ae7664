"""Every kind of row check, dataset check and cleaning step in the spec unions has a row in docs/rules.md whose
example parses into that kind, and an implementation that handles the example."""

from __future__ import annotations

import datetime as dt
import re
import typing

import pytest
import yaml
from pydantic import TypeAdapter

from lakehouse.rules import dataset_checks
from lakehouse.rules.checks import compile_check
from lakehouse.rules.cleaning import step_transform
from lakehouse.specs import models as m
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


ROW_CHECKS = kinds(m.RowCheck)
DATASET_CHECKS = kinds(m.DatasetCheck)
STEPS = kinds(m.CleaningStep)
NOW = dt.datetime(2024, 7, 1)


def test_every_kind_is_documented_and_every_documented_kind_exists():
    assert set(documented("Row checks")) == set(ROW_CHECKS)
    assert set(documented("Dataset checks")) == set(DATASET_CHECKS)
    assert set(documented("Cleaning steps")) == set(STEPS)


@pytest.mark.parametrize("name", sorted(ROW_CHECKS))
def test_row_check_example_compiles(name):
    examples = documented("Row checks")[name] or [f"{{check: {name}, column: x}}"]
    for text in examples:
        check = TypeAdapter(m.RowCheck).validate_python(yaml.safe_load(text))
        assert isinstance(check, ROW_CHECKS[name])
        compiled = compile_check(check, 0, NOW)
        assert compiled and all(c.fails and c.message for c in compiled)


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
