"""Distributed correctness: the daily job on `local-cluster[2,1,1024]` (a master, two executor JVMs of their own)
writes the same tables as on `local[2]` (one JVM). Nothing may depend on the driver and the executors sharing
memory or a working directory. `make test-cluster`."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pytest

from lakehouse.sample.retail import RetailGenerator
from tests.conftest import CONF
from tests.lake_rows import LAYERS, lake_rows

pytestmark = pytest.mark.cluster

END = dt.date(2024, 7, 2)
TABLES = [f"{layer}/{name}" for name in ("campaigns", "customers", "products", "inventory", "sales")
          for layer in ("bronze", "silver", "quarantine")] + [
    "gold/daily_sales_summary", "gold/daily_inventory_movement", "_meta/ingested_files", "_meta/quality"]


def _run(root, master: str) -> str:
    env = {**os.environ, "LAKEHOUSE_ROOT": str(root), "LAKEHOUSE_CONF_DIR": str(CONF), "LAKEHOUSE_ENGINE": "rust",
           "LAKEHOUSE_SPARK_CONF": json.dumps({"spark.master": master, "spark.sql.shuffle.partitions": "4",
                                               "spark.ui.enabled": "false", "spark.executor.memory": "1g"})}
    done = subprocess.run([sys.executable, "-m", "lakehouse.cli", "run", "--pending"], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


def _contents(root) -> dict[str, list[str]]:
    rows = lake_rows(root, LAYERS)
    return {t: rows[t] for t in TABLES}


def test_two_executor_jvms_write_what_one_jvm_writes(tmp_path):
    RetailGenerator(tmp_path / "single", days=2, rows_per_day=300, seed=11, end_date=END).write()
    shutil.copytree(tmp_path / "single" / "raw", tmp_path / "cluster" / "raw")
    single = _run(tmp_path / "single", "local[2]")
    cluster = _run(tmp_path / "cluster", "local-cluster[2,1,1024]")
    assert "2 run date(s), 0 failed" in single and "2 run date(s), 0 failed" in cluster
    ours, theirs = _contents(tmp_path / "single"), _contents(tmp_path / "cluster")
    assert all(ours[t] for t in TABLES if not t.startswith("quarantine/"))
    for table in TABLES:
        assert theirs[table] == ours[table], table
