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


def test_jupyter_execute_from_the_project_root_needs_no_variable(sample_lake, tmp_path):
    """`jupyter execute notebooks/<name>.ipynb` in a project folder (its conf/ and lake/ beside notebooks/), with no
    LAKEHOUSE_* variable set: each notebook finds the project's conf and lake by itself, also when the kernel
    starts in notebooks/."""
    import os
    import shutil
    import subprocess
    import sys

    project = tmp_path / "project"
    for folder in ("conf", "notebooks"):
        shutil.copytree(REPO / folder, project / folder)
    shutil.copytree(sample_lake, project / "lake")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_"))}
    env["MPLBACKEND"] = "Agg"
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    for path in NOTEBOOKS:
        done = subprocess.run([jupyter, "execute", f"notebooks/{path.name}"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{path.name}\n{done.stderr[-3000:]}"
    done = subprocess.run([sys.executable, "-c", "from lakehouse.settings import Settings; s = Settings.from_env(); "
                           "print(s.lake_root, s.conf_dir)"], cwd=project / "notebooks", env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == [str(project / "lake"), str(project / "conf")], done.stdout + done.stderr
