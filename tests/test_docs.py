"""docs/aggregations.md against the spec models: every key documented, no key documented that the models lack,
the required ones marked so, and its example a spec that validate-config and Spark accept."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel

from lakehouse.api import Lakehouse
from lakehouse.settings import Settings
from lakehouse.specs import load_catalog
from lakehouse.specs.aggregation import AggregationSpec, AggregationTarget, Join
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import CONF

DOC = Path(__file__).resolve().parents[1] / "docs" / "aggregations.md"


def documented(heading: str) -> dict[str, str]:
    """key -> its 'required' cell, from the table under `heading`."""
    section = DOC.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([^`]+)`", r).group(1): r.split("|")[3].strip() for r in rows}  # type: ignore[union-attr]


def model_keys(model: type[BaseModel]) -> dict[str, str]:
    return {(f.alias or name): ("yes" if f.is_required() else "no") for name, f in model.model_fields.items()}


@pytest.mark.parametrize(("heading", "model"), [("Keys of a gold spec", AggregationSpec), ("Keys of a join", Join),
                                                ("Keys of `target`", AggregationTarget)])
def test_every_key_of_the_models_is_documented_as_it_is(heading, model):
    assert documented(heading) == model_keys(model)


def test_the_example_is_a_spec_the_product_accepts(tmp_path, spark):
    block = DOC.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "aggregations" / "example.yaml").write_text(block)
    catalog = load_catalog(conf)
    spec = catalog.aggregations["sales_by_category"]
    assert spec.joins[0].prefix == "product_" and spec.joins[0].select == ["category", "brand", "cost_price"]
    root = tmp_path / "lake"
    engine = select_engine(spark, LakeLayout(str(root)), "rust")  # the tests' session
    lake = Lakehouse(Settings(lake_root=str(root), engine="rust", conf_dir=str(conf)), engine=engine)
    lake.validate(resolve=True)  # every column and SQL fragment resolved against the silver schemas
