"""The exploration notebook runs top to bottom against a real lake (its cells executed in order)."""

from __future__ import annotations

import datetime as dt
import json

from lakehouse.api import Lakehouse, Settings
from lakehouse.sample.retail import RetailGenerator
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import CONF, REPO


def test_exploration_notebook_runs(spark, tmp_path, monkeypatch, capsys):
    lake = tmp_path / "lake"
    end = dt.date(2024, 7, 2)
    RetailGenerator(lake, days=2, rows_per_day=80, seed=2, end_date=end, products=20, customers=30).write()
    Lakehouse(Settings(lake_root=str(lake), engine="rust", conf_dir=str(CONF)),
              engine=select_engine(spark, LakeLayout(str(lake)), "rust")).run([end - dt.timedelta(days=1), end])
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(lake))
    monkeypatch.setenv("LAKEHOUSE_ENGINE", "rust")
    notebook = json.loads((REPO / "notebooks" / "explore_lakehouse.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] for c in code)  # stored without outputs
    namespace: dict = {}
    for cell in code:
        exec(compile("".join(cell["source"]), "notebook", "exec"), namespace)
    out = capsys.readouterr().out
    assert f"lake={lake} engine=rust" in out
    assert namespace["gold"].count() > 0 and namespace["pivot"].shape[0] == 2
    assert "rows at version 0:" in out
