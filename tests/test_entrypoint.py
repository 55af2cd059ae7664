"""The entry scripts run the way the Spark Operator runs them: spark-submit, the manifest's arguments, specs from
a mounted ConfigMap folder. Any failure must end the application with a non-zero exit code."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lakehouse import cli
from lakehouse.sample.retail import RetailGenerator
from tests.conftest import CONF, REPO, require_jars
from tests.lake_rows import lake_rows, table_versions

DAY = dt.date(2024, 5, 1)


def manifest_arguments() -> tuple[str, list[str]]:
    daily = yaml.safe_load((REPO / "k8s/base/daily.yaml").read_text())
    template = daily["spec"]["template"]
    script = template["mainApplicationFile"].removeprefix("local:///opt/lakehouse/")
    return script, list(template["arguments"])


def mounted_conf(tmp_path: Path) -> Path:
    """What the pod sees: the two ConfigMaps mounted as datasets/ and aggregations/."""
    mount = tmp_path / "mnt" / "conf"
    for folder in ("datasets", "aggregations"):
        shutil.copytree(CONF / folder, mount / folder)
    return mount


def spark_submit(script: str, args: list[str], lake: Path, extra_env: dict | None = None,
                 jars: str | None = None, master: str = "local[1]") -> subprocess.CompletedProcess:
    """The script under spark-submit; `jars` go to `--jars` (the suite's own LAKEHOUSE_SPARK_JARS is not passed
    on: under spark-submit jars are given to spark-submit itself)."""
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("LAKEHOUSE_ENGINE", "LAKEHOUSE_SPARK_JARS")}
    env.update({"LAKEHOUSE_ROOT": str(lake), "PYSPARK_PYTHON": sys.executable,
                "PYSPARK_DRIVER_PYTHON": sys.executable, **(extra_env or {})})
    cmd = [str(bin_dir / "spark-submit"), "--master", master, "--conf", "spark.ui.enabled=false",
           "--driver-java-options", f"-Dlog4j2.configurationFile={CONF / 'spark/log4j2.properties'}",
           *(["--jars", jars] if jars else []), str(REPO / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)


def _with(args: list[str], flag: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


def test_broken_input_ends_the_application_with_exit_code_1(tmp_path):
    script, args = manifest_arguments()
    lake = tmp_path / "lake"
    # yesterday's files: what the nightly schedule's `--pending --look-back-days 7` finds
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    RetailGenerator(lake, days=1, rows_per_day=50, seed=3, end_date=yesterday, products=20, customers=30).write()
    corrupt = next((lake / "raw/customers").rglob("*.parquet"))
    corrupt.write_bytes(b"PAR1 this is not a parquet file")
    # a bad file is set aside by default; this dataset's policy makes it fail the dataset
    conf = mounted_conf(tmp_path)
    spec = conf / "datasets" / "customers.yaml"
    spec.write_text(spec.read_text() + "on_bad_file: fail\n")
    # the cluster runs the jvm engine; here only the embedded one exists, everything else is the manifest's
    args = _with(_with(args, "--conf-dir", str(conf)), "--engine", "rust")
    assert "--pending" in args and "--look-back-days" in args
    proc = spark_submit(script, args, lake)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    failed = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("customers")]
    assert failed and " failed " in failed[0], proc.stdout
    assert f"{corrupt}: not a Parquet file (bad magic bytes)" in failed[0]
    assert "Py4JJavaError" not in proc.stdout and "Traceback" not in proc.stdout
    # the other datasets still loaded, and the failure is in the run record
    assert "sales" in proc.stdout and (lake / "silver/sales/_delta_log").is_dir()


def _some_raw(lake: Path) -> Path:
    """A lake with a raw zone (a lake root without one is an error of its own)."""
    RetailGenerator(lake, days=1, rows_per_day=5, seed=3, end_date=DAY, products=5, customers=5).write()
    return lake


def test_the_jvm_engine_without_delta_jars_is_a_configuration_error(tmp_path):
    script, args = manifest_arguments()
    args = _with(args, "--conf-dir", str(mounted_conf(tmp_path)))
    proc = spark_submit(script, args, _some_raw(tmp_path / "lake"))
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    # spark-submit's PythonRunner merges the driver's stderr into stdout
    assert "LAKEHOUSE_SPARK_JARS" in proc.stdout + proc.stderr


def test_spark_submit_with_only_lakehouse_spark_jars_says_what_to_add(tmp_path):
    """Under spark-submit the driver's classpath is fixed before the job's code runs: the job says to give the jars
    to spark-submit itself (with the exact option), instead of asking for the variable that is set."""
    script, args = manifest_arguments()
    jar = tmp_path / "delta-spark_2.13-4.0.0.jar"
    jar.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip archive
    args = _with(args, "--conf-dir", str(mounted_conf(tmp_path)))
    env_jars = {"LAKEHOUSE_SPARK_JARS": str(jar)}
    proc = spark_submit(script, args, _some_raw(tmp_path / "lake"), extra_env=env_jars)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    assert f"spark-submit --jars {jar}" in proc.stdout + proc.stderr


def test_an_unexpected_exception_is_exit_code_1(monkeypatch, tmp_path, spark):
    from lakehouse.pipeline import job

    def explode(self, dates):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(job.DailyJob, "run", explode)
    code = cli.main(["run", "--date", "2024-01-01", "--engine", "rust", "--lake-root",
                     str(_some_raw(tmp_path / "lake")), "--conf-dir", str(CONF)])
    assert code == 1


@pytest.mark.parametrize("argv", [["run", "--date", "2024-13-01"], ["run", "--end", "2024-01-01"],
                                  ["run", "--start", "2024-01-05", "--end", "2024-01-01"], ["frobnicate"]])
def test_usage_errors_are_exit_code_2(argv, capsys):
    assert cli.main([*argv, *(["--conf-dir", str(CONF)] if argv[0] == "run" else [])]) == 2


def test_vacuum_below_seven_days_is_refused_without_force(tmp_path, capsys):
    code = cli.main(["vacuum", "--retention-hours", "24", "--lake-root", str(tmp_path), "--conf-dir", str(CONF)])
    assert code == 2 and "--force" in capsys.readouterr().err


@pytest.mark.jvm
@pytest.mark.e2e
def test_spark_submit_on_the_jvm_engine_writes_the_rust_engines_tables(tmp_path):
    """The manifest's own command under spark-submit, once with Delta's jars (`--jars`, LAKEHOUSE_ENGINE=jvm: the
    production image) and once on the embedded engine, over the same sample lake (three days, the drift day
    among them), then once more each (nothing pending: no table gets a new version): the same rows in every
    table of every layer."""
    jars = os.environ.get("LAKEHOUSE_SPARK_JARS", "")
    if "delta-spark" not in jars:
        require_jars()
    script, args = manifest_arguments()
    args = _with(args, "--conf-dir", str(CONF))
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    lakes = {}
    for engine in ("jvm", "rust"):
        lake = tmp_path / engine
        RetailGenerator(lake, days=3, rows_per_day=120, seed=11, end_date=yesterday, products=25, customers=40).write()
        run_args = _with(args, "--engine", engine)
        submit_jars = jars if engine == "jvm" else None
        first = spark_submit(script, run_args, lake, jars=submit_jars, master="local[2]")
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        versions = table_versions(lake)
        again = spark_submit(script, run_args, lake, jars=submit_jars, master="local[2]")
        assert again.returncode == 0 and "nothing pending" in again.stdout, again.stdout[-3000:]
        assert table_versions(lake) == versions
        lakes[engine] = lake_rows(lake)
    assert set(lakes["jvm"]) == set(lakes["rust"]) and len(lakes["jvm"]) >= 16
    for table in lakes["rust"]:
        assert lakes["jvm"][table] == lakes["rust"][table], table
    assert any("payment_method" in row for row in lakes["jvm"]["bronze/sales"])  # the drift day reached bronze
