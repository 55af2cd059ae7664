"""Every notebook runs top to bottom in a real Jupyter kernel (nbclient) against a small generated lake, and each
plotting cell produces an image."""

from __future__ import annotations

import datetime as dt

import nbformat
import pytest
from nbclient import NotebookClient

from lakehouse.api import Lakehouse, Settings
from lakehouse.sample.retail import RetailGenerator
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import CONF, REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def sample_lake(spark, tmp_path_factory):
    lake = tmp_path_factory.mktemp("notebooks") / "lake"
    end = dt.date(2024, 7, 3)
    RetailGenerator(lake, days=3, rows_per_day=80, seed=2, end_date=end, products=20, customers=30).write()
    Lakehouse(Settings(lake_root=str(lake), engine="rust", conf_dir=str(CONF)),
              engine=select_engine(spark, LakeLayout(str(lake)), "rust")).run(
        [end - dt.timedelta(days=2), end - dt.timedelta(days=1), end])
    return lake


def test_notebooks_are_stored_without_outputs():
    assert len(NOTEBOOKS) >= 4
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in book.cells if c.cell_type == "code"), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_plots(path, sample_lake, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(sample_lake))
    monkeypatch.setenv("LAKEHOUSE_CONF_DIR", str(CONF))
    monkeypatch.setenv("LAKEHOUSE_ENGINE", "rust")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    code = [c for c in book.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    plots = [c for c in code if "plot" in c.metadata.get("tags", [])]
    for cell in plots:
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source[:80]
    if path.stem != "explore_lakehouse":
        assert plots, f"{path.name} has no plotting cell"
