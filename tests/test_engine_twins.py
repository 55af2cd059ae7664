"""Both engines load the sample lake alike: several days with a drift day, then a rerun that changes nothing.
The jvm run needs Delta's jars on Spark's classpath (LAKEHOUSE_SPARK_JARS) and is skipped without them; where both
engines are available, their tables must hold the same rows."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from lakehouse.pipeline.job import DailyJob
from lakehouse.sample.retail import RetailGenerator
from lakehouse.specs import load_catalog
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import ENGINES, require_jvm
from tests.test_incremental import mini_conf

pytestmark = pytest.mark.e2e
END = dt.date(2024, 9, 3)
DAYS = [END - dt.timedelta(days=2), END - dt.timedelta(days=1), END]  # the middle one is the drift day
TABLES = ["silver/sales", "silver/products", "gold/daily_sales_summary"]


def load(spark, engine_name: str, root: Path, conf: Path) -> dict[str, str]:
    RetailGenerator(root, days=3, rows_per_day=120, seed=31, end_date=END, products=30, customers=40).write()
    engine = select_engine(spark, LakeLayout(str(root)), engine_name)
    job = DailyJob(engine, load_catalog(conf))
    results = job.run(DAYS)
    assert not any(r.failed for r in results), [(o.dataset, o.message) for r in results for o in r.datasets]
    rows = {t: engine.read(engine.layout.root + "/" + t).toPandas() for t in TABLES}
    sales = rows["silver/sales"]
    drift = sales[sales["_source_date"] == DAYS[1]]
    assert set(drift["payment_method"].dropna()) >= {"card", "cash"}
    assert sales[sales["_source_date"] != DAYS[1]]["payment_method"].isna().all()
    versions = {t: engine.version(engine.layout.root + "/" + t) for t in TABLES}
    again = job.run(DAYS)
    assert not any(r.failed for r in again)
    assert {t: engine.version(engine.layout.root + "/" + t) for t in TABLES} == versions
    out = {}
    for t, frame in rows.items():
        keep = sorted(c for c in frame.columns if c not in ("_run_id", "_ingested_at", "_source_file"))
        text = frame[keep].astype(str).sort_values(keep).to_csv(index=False)
        out[t] = hashlib.sha256(text.encode()).hexdigest()
    return out


@pytest.mark.parametrize("engine_name", ENGINES)
def test_a_drift_day_loads_and_reruns_as_no_ops_on_every_engine(spark, tmp_path, engine_name):
    if engine_name == "jvm":
        require_jvm(spark)
    conf = mini_conf(tmp_path)
    digests = load(spark, engine_name, tmp_path / engine_name, conf)
    if engine_name == "jvm":
        assert digests == load(spark, "rust", tmp_path / "rust", conf)


def test_interpreted_and_compiled_evaluation_load_the_same_tables(spark, tmp_path, monkeypatch):
    """Small inputs take the small path (session.evaluation_for: interpreted, planned once), large ones Spark's
    defaults (generated code, adaptive execution): the sample lake loaded both ways holds the same rows."""
    from lakehouse.pipeline import dataset, gold

    taken: list[bool] = []

    def recording(real):
        def scope(session, size):
            context = real(session, size)

            class Recorded:
                def __enter__(self):
                    taken.append(context.__enter__())
                    return taken[-1]

                def __exit__(self, *exc):
                    return context.__exit__(*exc)
            return Recorded()
        return scope

    monkeypatch.setattr(dataset, "evaluation_for", recording(dataset.evaluation_for))
    monkeypatch.setattr(gold, "evaluation_for", recording(gold.evaluation_for))
    conf = mini_conf(tmp_path)
    interpreted = load(spark, "rust", tmp_path / "interpreted", conf)
    assert taken and all(taken)  # the sample lake is small: every stage interpreted
    taken.clear()
    monkeypatch.setenv("LAKEHOUSE_SMALL_INPUT_BYTES", "0")  # never interpret
    compiled = load(spark, "rust", tmp_path / "compiled", conf)
    assert taken and not any(taken)
    assert compiled == interpreted
