"""The house's rules that a reader relies on: every error the product raises on purpose is defined in
`lakehouse.errors`, the results handed between floors are frozen, and the import contracts of pyproject.toml
(`make lint` runs them with lint-imports) hold."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import lakehouse
from lakehouse.errors import LakehouseError
from lakehouse.tables.engine import HistoryEntry, MergeResult, OptimizeResult, VacuumResult
from tests.conftest import REPO


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(lakehouse.__path__, "lakehouse."))


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_every_error_the_product_raises_on_purpose_is_defined_in_errors():
    for name in _modules():
        importlib.import_module(name)
    outside = sorted(f"{c.__module__}.{c.__qualname__}" for c in _subclasses(LakehouseError)
                     if c.__module__.startswith("lakehouse.") and c.__module__ != "lakehouse.errors")
    assert outside == []


@pytest.mark.parametrize("result", [MergeResult, OptimizeResult, VacuumResult, HistoryEntry])
def test_table_results_are_frozen(result):
    assert dataclasses.fields(result) and result.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_merge_results_add_up_without_changing_the_first():
    first = MergeResult(source_rows=5, inserted=1, updated=2, deleted=0, files_added=1, files_removed=1, version=3)
    total = first.plus(inserted=4, unchanged=2, deleted=1, files_added=2, version=4)
    assert total == MergeResult(source_rows=11, inserted=5, updated=2, deleted=1, files_added=3, files_removed=1,
                                version=4)
    assert first.version == 3 and first.plus().version == 3


def test_the_import_contracts_hold():
    """Floors top to bottom and no circle (pyproject.toml [tool.importlinter]); the same check `make lint` runs."""
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_the_architecture_page_draws_the_code():
    """docs/architecture.md's diagram is the one tools/architecture.py writes from today's imports."""
    done = subprocess.run([sys.executable, str(REPO / "tools" / "architecture.py"), "--check"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
