"""Every rerun is a no-op, on every path: run, rerun, full refresh, pending, backfill, in several orders, on data
with a drift day; and gold tables follow their specs (new ones are built, changed ones rebuilt)."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import textwrap
from pathlib import Path

import deltalake
import pytest

from lakehouse.pipeline.job import DailyJob
from lakehouse.sample.retail import RetailGenerator
from lakehouse.specs import load_catalog
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from tests.conftest import ENGINES, require_jvm
from tests.test_incremental import mini_conf

pytestmark = pytest.mark.e2e
END = dt.date(2024, 7, 3)
DAYS = [END - dt.timedelta(days=2), END - dt.timedelta(days=1), END]  # the middle one is the drift day
WATCHED = ["silver/sales", "silver/products", "gold/daily_sales_summary", "quarantine/sales", "quarantine/products"]


def content(root: Path, name: str) -> str:
    """A digest of the table's rows, sorted (run ids, ingest and quarantine times aside: they say when, not what; lineage
    paths relative to the lake)."""
    rows = deltalake.DeltaTable(str(root / name)).to_pyarrow_table().to_pylist()
    when = ("_run_id", "_ingested_at", "run_id", "quarantined_at")
    text = sorted(repr(sorted((k, v.replace(str(root), "<lake>") if isinstance(v, str) else v)
                              for k, v in r.items() if k not in when)) for r in rows)
    return hashlib.sha256("\n".join(text).encode()).hexdigest()


def state(root: Path) -> dict[str, tuple[int, str]]:
    return {n: (deltalake.DeltaTable(str(root / n)).version(), content(root, n)) for n in WATCHED}


def steps(job: DailyJob) -> dict:
    return {
        "run": lambda: job.run(DAYS),
        "rerun": lambda: job.run([DAYS[1]]),
        "rerun_last": lambda: job.run([DAYS[2]]),
        "refresh_day": lambda: job.full_refresh([DAYS[1]]),
        "refresh_all": lambda: job.full_refresh(None),
        "pending": lambda: job.run_pending(),
        "backfill": lambda: job.run(DAYS),
    }


ORDERS = [
    ["run", "rerun", "refresh_day", "rerun", "pending", "backfill", "refresh_all", "rerun_last"],
    ["pending", "refresh_all", "backfill", "rerun_last", "refresh_day", "pending", "rerun"],
]


@pytest.fixture(scope="module", params=ENGINES)
def outcomes(request, spark, tmp_path_factory):
    if request.param == "jvm":
        require_jvm(spark)
    out = []
    for i, order in enumerate(ORDERS):
        tmp = tmp_path_factory.mktemp(f"order{i}")
        root = tmp / "lake"
        RetailGenerator(root, days=3, rows_per_day=120, seed=21, end_date=END, products=30, customers=40).write()
        job = DailyJob(select_engine(spark, LakeLayout(str(root)), request.param), load_catalog(mini_conf(tmp)))
        states = []
        for name in order:
            results = steps(job)[name]()
            assert not any(r.failed for r in results), (name, [(o.dataset, o.message) for r in results
                                                                for o in r.datasets])
            states.append((name, state(root)))
        out.append((root, states))
    return out


@pytest.mark.parametrize("index", range(len(ORDERS)))
def test_nothing_changes_after_the_first_complete_load(outcomes, index):
    _, states = outcomes[index]
    first_name, first = states[0]
    for name, now in states[1:]:
        for table in WATCHED:
            assert now[table][0] == first[table][0], f"{name} wrote a new version of {table} (after {first_name})"
            assert now[table][1] == first[table][1], f"{name} changed the rows of {table}"


def test_every_order_ends_with_the_same_tables(outcomes):
    finals = [{t: s[-1][1][t][1] for t in WATCHED} for _, s in outcomes]
    assert all(f == finals[0] for f in finals[1:])


def test_a_new_gold_table_is_built_for_every_silver_date_then_follows_its_spec(spark, tmp_path):
    root = tmp_path / "lake"
    RetailGenerator(root, days=2, rows_per_day=100, seed=4, end_date=END, products=30, customers=40).write()
    conf = mini_conf(tmp_path)
    engine = select_engine(spark, LakeLayout(str(root)), "rust")
    DailyJob(engine, load_catalog(conf)).run(DAYS[1:])
    spec = conf / "aggregations" / "daily_store_units.yaml"
    spec.write_text(textwrap.dedent("""\
        name: daily_store_units
        from: sales
        date_column: transaction_date
        group_by: [transaction_date, store_id]
        measures: {units: sum(quantity)}
        """))
    result = DailyJob(engine, load_catalog(conf)).run_day(DAYS[2])  # nothing new in silver for this date
    assert not result.failed and any("daily_store_units is new" in n for n in result.notes)

    def expected():
        units: dict = collections.Counter()
        for r in deltalake.DeltaTable(str(root / "silver/sales")).to_pyarrow_table().to_pylist():
            units[(r["transaction_date"], r["store_id"])] += r["quantity"]
        return dict(units)

    def gold(column="units"):
        return {(g["transaction_date"], g["store_id"]): g[column]
                for g in deltalake.DeltaTable(str(root / "gold/daily_store_units")).to_pyarrow_table().to_pylist()}

    assert gold() == expected() and len({d for d, _ in gold()}) >= 2
    version = deltalake.DeltaTable(str(root / "gold/daily_store_units")).version()
    assert not DailyJob(engine, load_catalog(conf)).run_day(DAYS[2]).failed
    assert deltalake.DeltaTable(str(root / "gold/daily_store_units")).version() == version  # built once
    # a changed spec rebuilds the table under the new one
    spec.write_text(spec.read_text().replace("{units: sum(quantity)}", "{units: sum(quantity), lines: count(*)}"))
    result = DailyJob(engine, load_catalog(conf)).run_day(DAYS[2])
    assert any("daily_store_units is changed" in n for n in result.notes)
    assert gold() == expected() and all(v > 0 for v in gold("lines").values())
    # a removed spec is reported, the table kept
    spec.unlink()
    result = DailyJob(engine, load_catalog(conf)).run_day(DAYS[2])
    assert any("daily_store_units has no spec" in n for n in result.notes)
    assert gold() == expected()
