"""Fault injection: the product under bad circumstances, each case compared with an uninterrupted sequential run.

Real faults, in real processes: commands started together on one lake, SIGKILL at moments of a run and of the
maintenance commands, the Spark JVM killed under the driver, a raw file the process may not read (root's
permission override dropped from the process's capabilities), a read-only table folder, a file-size limit
(`ulimit -f`), a full disk (a small tmpfs in a private mount namespace), `land` killed mid-upload, an S3 store
behind a flaky network (a proxy that throttles, answers 5xx, resets and drops connections, and loses answers to
requests the store carried out), an S3 endpoint that refuses connections, a missing bucket, no credentials, lake
paths with spaces, non-ASCII letters and URI metacharacters; two writers at once on the jvm engine too.

The promise checked every time: the command ends with exit 0, or with a non-zero exit and one line that says
what happened (no Python traceback, Java stack or Rust panic on the console), and after the next `--pending`
the silver and gold tables hold exactly the rows an uninterrupted run gives, with one row per key.
`make test-faults` runs them (marker `faults`); `make test-soak` the long trials (marker `soak`: a run killed at
twenty moments, fifty concurrent pairs).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import CONF
from tests.lake_rows import lake_rows

pytestmark = pytest.mark.faults
# long trials (twenty kill moments, fifty concurrent pairs): `make test-soak`
SOAK = pytest.mark.soak

END = dt.date(2024, 9, 2)
D1, D2 = END - dt.timedelta(days=1), END
LAYERS = ("silver", "gold")
# what identifies a silver row (the sample's products and customers keep history: a key and its version's start)
KEYS = {"silver/sales": ("transaction_id",), "silver/products": ("product_id", "valid_from"),
        "silver/customers": ("customer_id", "valid_from"), "silver/inventory": ("update_id",),
        "silver/campaigns": ("campaign_id",)}
SPARK_CONF = json.dumps({"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false",
                         "spark.driver.memory": "1g"})


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "AWS_"))}
    env.update(LAKEHOUSE_CONF_DIR=str(CONF), LAKEHOUSE_ENGINE="rust", LAKEHOUSE_SPARK_CONF=SPARK_CONF,
               PYSPARK_PYTHON=sys.executable, LAKEHOUSE_RETRY_BASE_SECONDS="0.1", **extra)
    return env


def cli(lake: Path | str, *args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None,
        timeout: int = 600) -> subprocess.CompletedProcess[str]:
    argv = [*(prefix or []), sys.executable, "-m", "lakehouse.cli", *args]
    return subprocess.run(argv, env={**(env or base_env()), "LAKEHOUSE_ROOT": str(lake)}, capture_output=True,
                          text=True, timeout=timeout)


def start(lake: Path | str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "lakehouse.cli", *args],
                            env={**(env or base_env()), "LAKEHOUSE_ROOT": str(lake)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_clean_ending(done: subprocess.CompletedProcess[str], ok: bool | None = None) -> str:
    """Exit 0, or non-zero with a one-line error; never a traceback, a Java stack or a Rust panic. Returns the
    error line (or '')."""
    text = done.stdout + done.stderr
    assert "Traceback (most recent call last)" not in text, text[-3000:]
    assert "\tat " not in text and "panicked at" not in text, text[-3000:]
    if ok is True:
        assert done.returncode == 0, text[-3000:]
    if ok is False:
        assert done.returncode not in (0, None), text[-3000:]
    if done.returncode == 0:
        return ""
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, text[-3000:]
    return errors[0]


def assert_heals_to(lake: Path, expected: dict[str, list[str]], env: dict[str, str] | None = None) -> None:
    healed = cli(lake, "run", "--pending", env=env)
    assert_clean_ending(healed, ok=True)
    assert_same_tables(lake, expected)


def assert_same_tables(lake: Path, expected: dict[str, list[str]]) -> None:
    got = lake_rows(lake, LAYERS)
    assert set(got) == set(expected)
    for table, rows in expected.items():
        assert got[table] == rows, table
    for table, key in KEYS.items():
        keys = [tuple(json.loads(r)[k] for k in key) for r in got[table]]
        assert len(keys) == len(set(keys)), f"{table}: a key twice"


@pytest.fixture(scope="module")
def raw_zone(tmp_path_factory) -> Path:
    from lakehouse.sample.retail import RetailGenerator

    gen = tmp_path_factory.mktemp("faults-gen")
    RetailGenerator(gen, days=2, rows_per_day=120, seed=17, end_date=END, products=25, customers=40).write()
    return gen / "raw"


def fresh_lake(raw: Path, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    shutil.copytree(raw, where / "raw")
    return where


REFERENCE_RUNS = {"pending": [["--pending"]], "d1d2": [["--date", str(D1)], ["--date", str(D2)]],
                  "d2d1": [["--date", str(D2)], ["--date", str(D1)]], "d1": [["--date", str(D1)]]}


class References(dict):  # type: ignore[type-arg]
    """Uninterrupted sequential runs, each built when first asked for: `--pending` over both days; `--date D1`
    then `--date D2`; the reverse; `--date D1` alone."""

    def __init__(self, raw: Path, base: Path) -> None:
        super().__init__()
        self.raw, self.base = raw, base

    def __missing__(self, name: str) -> dict[str, list[str]]:
        lake = fresh_lake(self.raw, self.base / name)
        for args in REFERENCE_RUNS[name]:
            assert_clean_ending(cli(lake, "run", *args), ok=True)
        self[name] = lake_rows(lake, LAYERS)
        return self[name]


@pytest.fixture(scope="module")
def reference(raw_zone, tmp_path_factory) -> References:
    return References(raw_zone, tmp_path_factory.mktemp("faults-ref"))


# ---------------------------------------------------------------- two writing commands at once

def test_two_pending_runs_at_once_give_one_runs_tables(raw_zone, reference, tmp_path):
    _two_pending_runs(raw_zone, reference, tmp_path)


@SOAK
@pytest.mark.parametrize("pair", range(50))
def test_fifty_pairs_of_pending_runs(raw_zone, reference, tmp_path, pair):
    _two_pending_runs(raw_zone, reference, tmp_path)


def _two_pending_runs(raw_zone: Path, reference: References, tmp_path: Path) -> None:
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    a, b = start(lake, "run", "--pending"), start(lake, "run", "--pending")
    done = [finish(a), finish(b)]
    for d in done:
        assert_clean_ending(d, ok=True)
    assert sum("nothing pending" in d.stdout for d in done) == 1  # the second found the first one's work done
    assert any("waiting up to" in d.stdout + d.stderr for d in done)
    assert_same_tables(lake, reference["pending"])


def test_two_runs_of_different_dates_at_once_give_a_sequential_order(raw_zone, reference, tmp_path):
    """Neither run's `exists_in` checks see the other's dimensions half loaded: the tables are those of D1 then D2,
    or of D2 then D1."""
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    a, b = start(lake, "run", "--date", str(D1)), start(lake, "run", "--date", str(D2))
    done_a, done_b = finish(a), finish(b)
    for d in (done_a, done_b):
        assert_clean_ending(d, ok=True)
    # the one that waited for the lease ran second; if neither waited, they did not overlap
    waited = ["waiting up to" in d.stdout + d.stderr for d in (done_a, done_b)]
    assert sum(waited) <= 1, waited
    orders = ["d2d1" if waited[0] else "d1d2"] if any(waited) else ["d1d2", "d2d1"]
    assert lake_rows(lake, LAYERS) in [reference[o] for o in orders]


@pytest.mark.jvm
def test_two_writers_at_once_on_the_jvm_engine(raw_zone, reference, tmp_path):
    """The production engine under the race of two writers: a pending run and a run of day 2 started together
    on an empty lake; both end cleanly and the lake holds the rust engine's reference tables of the order the
    lease gave them (the engines are twins)."""
    from tests.conftest import require_jars

    jars = os.environ.get("LAKEHOUSE_SPARK_JARS", "")
    if "delta-spark" not in jars:
        require_jars()
    # a jvm run on a loaded machine can outlast the default lease wait (600 s): the second writer waits longer
    env = {**base_env(), "LAKEHOUSE_ENGINE": "jvm", "LAKEHOUSE_SPARK_JARS": jars, "LAKEHOUSE_LEASE_WAIT": "1800"}
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    a, b = start(lake, "run", "--pending", env=env), start(lake, "run", "--date", str(D2), env=env)
    done = [finish(a, timeout=1800), finish(b, timeout=1800)]
    for d in done:
        assert_clean_ending(d, ok=True)
    # in the order the lease gave: the pending run first (day 2 then finds nothing new), or day 2 first (then the
    # pending run loads day 1: the tables of day 2 then day 1)
    waited = ["waiting up to" in d.stdout + d.stderr for d in done]
    assert sum(waited) <= 1, waited
    orders = ["d2d1" if waited[0] else "pending"] if any(waited) else ["pending", "d2d1"]
    healed = cli(lake, "run", "--pending", env=env)
    assert_clean_ending(healed, ok=True)
    assert lake_rows(lake, LAYERS) in [reference[o] for o in orders], orders


def test_the_same_date_twice_at_once(raw_zone, reference, tmp_path):
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    a, b = start(lake, "run", "--date", str(D1)), start(lake, "run", "--date", str(D1))
    for d in (finish(a), finish(b)):
        assert_clean_ending(d, ok=True)
    assert_same_tables(lake, reference["d1"])


@pytest.mark.parametrize("other", [["maintenance", "--retention-hours", "0", "--force"], ["run", "--full-refresh"],
                                   ["optimize"], ["run", "--date", str(D2)]])
def test_a_run_beside_another_writing_command(raw_zone, reference, tmp_path, other):
    """A pending run on a lake with day 1 loaded, started together with maintenance, a full refresh, a compaction
    or a run of day 2: both end cleanly, in some order; the next `--pending` leaves the uninterrupted run's
    tables."""
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    assert_clean_ending(cli(lake, "run", "--date", str(D1)), ok=True)
    a, b = start(lake, "run", "--pending"), start(lake, *other)
    for d in (finish(a), finish(b)):
        assert_clean_ending(d, ok=True)
    assert_heals_to(lake, reference["pending"])


def test_a_writer_that_cannot_get_the_lease_says_who_holds_it(raw_zone, tmp_path):
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    holder = start(lake, "run", "--pending")
    deadline = time.monotonic() + 60
    while not (lake / "_meta" / "_writer.lock").exists() or not (lake / "_meta" / "_writer.lock").read_text():
        assert time.monotonic() < deadline and holder.poll() is None
        time.sleep(0.1)
    waited = cli(lake, "run", "--pending", env=base_env(LAKEHOUSE_LEASE_WAIT="1"))
    line = assert_clean_ending(waited, ok=False)
    assert waited.returncode == 1 and f"pid {holder.pid}" in line and "run --pending" in line, line
    assert_clean_ending(finish(holder), ok=True)


# ---------------------------------------------------------------- kill -9 anywhere

@pytest.mark.parametrize("after", [3.0, 12.0, 21.0])  # twenty moments: make test-soak
def test_a_run_killed_at_a_moment_heals(raw_zone, reference, tmp_path, after):
    """SIGKILL to the whole process group (driver and JVM) `after` seconds into a two-day run."""
    _kill_after_and_heal(raw_zone, reference, tmp_path, after)


# twenty moments spread over a whole two-day run of the sample (about RUN_SECONDS here), start-up included
RUN_SECONDS = 28.0
TWENTY = [round(RUN_SECONDS * (i + 0.5) / 20, 2) for i in range(20)]


@SOAK
@pytest.mark.parametrize("after", TWENTY)
def test_a_run_killed_at_one_of_twenty_moments_heals(raw_zone, reference, tmp_path, after):
    _kill_after_and_heal(raw_zone, reference, tmp_path, after)


def _kill_after_and_heal(raw_zone: Path, reference: References, tmp_path: Path, after: float) -> None:
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    proc = start(lake, "run", "--pending")
    try:
        proc.wait(timeout=after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    finish(proc)
    assert_heals_to(lake, reference["pending"])


@pytest.mark.parametrize("command", [["maintenance", "--retention-hours", "0", "--force"], ["optimize"],
                                     ["vacuum", "--retention-hours", "0", "--force"]])
def test_maintenance_killed_midway_heals(raw_zone, reference, tmp_path, command):
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    assert_clean_ending(cli(lake, "run", "--pending"), ok=True)
    proc = start(lake, *command)
    try:
        proc.wait(timeout=6)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    finish(proc)
    assert_clean_ending(cli(lake, *command), ok=True)
    assert_heals_to(lake, reference["pending"])


def test_the_spark_jvm_killed_under_the_driver(raw_zone, reference, tmp_path):
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    proc = start(lake, "run", "--pending")
    jvm = None
    deadline = time.monotonic() + 120
    while jvm is None and time.monotonic() < deadline and proc.poll() is None:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        for pid in children.read_text().split() if children.exists() else []:
            if "java" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                jvm = int(pid)
        time.sleep(0.2)
    assert jvm is not None, "no JVM started"
    time.sleep(8)  # into the loads
    os.kill(jvm, signal.SIGKILL)
    done = finish(proc)
    line = assert_clean_ending(done, ok=False)
    assert "JVM" in line, line
    assert_heals_to(lake, reference["pending"])


# ---------------------------------------------------------------- the environment, not the data

DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]


def _rejected(lake: Path) -> list[dict]:
    import deltalake

    path = lake / "_meta" / "rejected_files"
    return deltalake.DeltaTable(str(path)).to_pyarrow_table().to_pylist() if (path / "_delta_log").is_dir() else []


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_a_raw_file_the_process_may_not_read_is_not_a_bad_file(raw_zone, reference, tmp_path):
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    locked = lake / "raw" / "sales" / f"date={D1}" / "sales.csv"
    locked.chmod(0)
    try:
        done = cli(lake, "run", "--pending", prefix=DROP_DAC, env=base_env(LAKEHOUSE_RETRIES="2"))
    finally:
        locked.chmod(0o644)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert_clean_ending(done)
    assert "permission denied" in done.stdout and "sales" in done.stdout, done.stdout[-2000:]
    assert not [r for r in _rejected(lake) if r["path"].endswith("sales.csv")]  # not taken for a bad file
    assert_heals_to(lake, reference["pending"])


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_a_read_only_table_folder(raw_zone, reference, tmp_path):
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    assert_clean_ending(cli(lake, "run", "--date", str(D1)), ok=True)
    folders = [p for p in (lake / "silver").rglob("*") if p.is_dir()] + [lake / "silver"]
    for p in folders:
        p.chmod(0o555)
    try:
        done = cli(lake, "run", "--pending", prefix=DROP_DAC, env=base_env(LAKEHOUSE_RETRIES="1"))
    finally:
        for p in folders:
            p.chmod(0o755)
    assert done.returncode != 0
    assert_clean_ending(done)
    assert "permission denied" in done.stdout.lower() or "read-only" in done.stdout.lower(), done.stdout[-2000:]
    assert_heals_to(lake, reference["pending"])


def test_a_file_size_limit_is_not_a_bad_file(raw_zone, reference, tmp_path):
    lake = fresh_lake(raw_zone, tmp_path / "lake")
    done = cli(lake, "run", "--pending", prefix=["bash", "-c", 'ulimit -f 48; exec "$@"', "limited"],
               env=base_env(LAKEHOUSE_RETRIES="1"))
    assert done.returncode != 0
    assert_clean_ending(done)
    assert not _rejected(lake)  # no healthy file taken for a bad one
    assert_heals_to(lake, reference["pending"])


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare -m")
def test_a_full_disk(raw_zone, reference, tmp_path):
    """The lake on a tmpfs (a private mount namespace) holding the raw files and a filler that leaves 256 KiB free:
    the run fails with one line naming the lack of space; with the filler removed, the next `--pending` heals."""
    mount = tmp_path / "small"
    mount.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    script = f"""
set -eu
mount -t tmpfs -o size=64m tmpfs {mount}
cp -r {raw_zone} {mount}/raw
avail=$(df --output=avail -k {mount} | tail -1)
fallocate -l $((avail - 256))k {mount}/filler
set +e
LAKEHOUSE_ROOT={mount} {sys.executable} -m lakehouse.cli run --pending > {out}/full.out 2> {out}/full.err
echo $? > {out}/full.rc
rm {mount}/filler
LAKEHOUSE_ROOT={mount} {sys.executable} -m lakehouse.cli run --pending > {out}/heal.out 2> {out}/heal.err
echo $? > {out}/heal.rc
cp -r {mount} {out}/lake
"""
    subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", script], env=base_env(
        LAKEHOUSE_RETRIES="1"), timeout=900, check=True)
    full = subprocess.CompletedProcess([], int((out / "full.rc").read_text()), (out / "full.out").read_text(),
                                       (out / "full.err").read_text())
    assert full.returncode != 0
    line = assert_clean_ending(full)
    assert "no space left on device" in (full.stdout + line), full.stdout[-2000:] + line
    assert (out / "heal.rc").read_text().strip() == "0", (out / "heal.err").read_text()[-3000:]
    healed = lake_rows(out / "lake", LAYERS)
    # the lake was loaded at the mount's path and copied here: lineage names the mount
    assert healed.keys() == reference["pending"].keys()
    for table, rows in reference["pending"].items():
        assert [r.replace(str(mount), "<lake>") for r in healed[table]] == rows, table


# ---------------------------------------------------------------- object storage that is not there

@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    from tests.s3_server import moto_server

    with moto_server() as url:
        yield url


def _s3_env(endpoint: str, **extra: str) -> dict[str, str]:
    from tests.s3_server import s3_env

    return base_env(**s3_env(endpoint, "faults-secret-" + uuid.uuid4().hex), LAKEHOUSE_RETRIES="2", **extra)


@pytest.mark.parametrize("command", [["run", "--pending"], ["plan", "--pending"], ["history", "silver/sales"],
                                     ["land", "--from", "{raw}", "--to", "s3://{bucket}/lake/raw"]])
def test_a_missing_bucket_is_one_line(moto, raw_zone, command):
    bucket = "no-such-bucket-" + uuid.uuid4().hex[:8]
    args = [a.format(raw=raw_zone, bucket=bucket) for a in command]
    done = cli(f"s3://{bucket}/lake", *args, env=_s3_env(moto))
    line = assert_clean_ending(done, ok=False)
    assert f"bucket '{bucket}' does not exist" in line, line


@pytest.mark.parametrize("command", [["run", "--pending"], ["plan", "--pending"], ["runs"],
                                     ["land", "--from", "{raw}", "--to", "s3://lake-x/lake/raw"]])
def test_an_endpoint_that_refuses_connections_is_one_line(raw_zone, command):
    from tests.s3_server import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    args = [a.format(raw=raw_zone) for a in command]
    done = cli("s3://lake-x/lake", *args, env=_s3_env(endpoint))
    line = assert_clean_ending(done, ok=False)
    assert "connection refused" in line.lower() and "127.0.0.1" in line, line


def _download_lake(bucket: str, prefix: str, endpoint: str, where: Path) -> dict[str, list[str]]:
    """The lake under s3://bucket/prefix copied to `where` (straight from the store), as lake_rows gives it, with
    the S3 root named `<lake>` like a local lake's path."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            target = where / obj["Key"][len(prefix) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, obj["Key"], str(target))
    return _rooted(lake_rows(where, LAYERS), f"s3a://{bucket}/{prefix}", f"s3://{bucket}/{prefix}")


def _rooted(rows: dict[str, list[str]], *roots: str) -> dict[str, list[str]]:
    """Lineage values named from the lake's root whatever its scheme (file:, s3://, s3a://): `<lake>/...`."""
    def plain(row: str) -> str:
        for root in (*roots, "file:<lake>"):
            row = row.replace(f'"{root}/', '"<lake>/')
        return row

    return {table: sorted(plain(r) for r in rs) for table, rs in rows.items()}


@pytest.fixture
def flaky(moto, tmp_path):
    """A proxy in front of the S3 server that fails one request in eight (seeded): 503 SlowDown, 500, a reset
    connection, a connection closed without an answer, an answer lost after the store did the work (a commit
    that happened, though its writer saw an error). Yields (its endpoint, the file listing each fault)."""
    from tests.s3_server import free_port, local_server

    port, log = free_port(), tmp_path / "faults.txt"
    url = f"http://127.0.0.1:{port}"
    with local_server([sys.executable, "-m", "tests.flaky_proxy", "--target", moto, "--port", str(port),
                       "--rate", "0.125", "--seed", os.environ.get("FLAKY_SEED", "26"),
                       "--kinds", "503,500,reset,drop,lost", "--log", str(log)], url + "/moto-api/", "the flaky proxy"):
        yield url, log


def _bucket(endpoint: str) -> str:
    import boto3

    name = "flaky-" + uuid.uuid4().hex[:8]
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test").create_bucket(Bucket=name)
    return name


def test_a_flaky_object_store(moto, flaky, raw_zone, reference, tmp_path):
    """Landing and a two-day run on a lake on S3, through a network that throttles, answers 5xx and drops and
    resets connections: each command retries in place and ends with exit 0, or with one line and a non-zero
    exit; the next `--pending` (through the same network) leaves the uninterrupted run's tables."""
    proxy, log = flaky
    bucket = _bucket(moto)
    env = {**_s3_env(proxy), "LAKEHOUSE_RETRIES": "3"}
    lake = f"s3://{bucket}/lake"
    landed = [cli(lake, "land", "--from", str(raw_zone), "--to", f"{lake}/raw", env=env) for _ in range(2)]
    for done in landed:
        assert_clean_ending(done)
    assert 0 in [d.returncode for d in landed], landed[-1].stderr[-2000:]
    ran = [cli(lake, "run", "--pending", env=env)]
    while ran[-1].returncode != 0 and len(ran) < 3:
        ran.append(cli(lake, "run", "--pending", env=env))
    for done in ran:
        assert_clean_ending(done)
    assert ran[-1].returncode == 0, ran[-1].stdout[-2000:] + ran[-1].stderr[-2000:]
    again = cli(lake, "run", "--pending", env=env)
    assert_clean_ending(again, ok=True)
    assert "nothing pending" in again.stdout
    got = _download_lake(bucket, "lake", moto, tmp_path / "copy")
    assert got == _rooted(reference["pending"])
    for table, key in KEYS.items():
        keys = [tuple(json.loads(r)[k] for k in key) for r in got[table]]
        assert len(keys) == len(set(keys)), table
    kinds = [line.split()[0] for line in log.read_text().splitlines()]
    assert {"503", "500", "reset", "drop", "lost"} <= set(kinds), kinds  # every kind of fault happened
    print(f"flaky store: {len(kinds)} faults injected; run exit codes {[d.returncode for d in ran]}")


def test_land_killed_midway_heals(moto, raw_zone, tmp_path):
    """SIGKILL while `land` sends a large file in parts: the next `land` leaves every file in the bucket with
    its exact bytes, and nothing half-sent is visible as an object."""
    import hashlib
    import random

    import boto3

    source = tmp_path / "raw"
    shutil.copytree(raw_zone, source)
    big = source / "sales" / f"date={D1}" / "export.bin"  # not a data file for the runs; 3 parts for land
    big.write_bytes(random.Random(5).randbytes(80 * 2**20))
    bucket = _bucket(moto)
    env = _s3_env(moto)
    client = boto3.client("s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    proc = start(f"s3://{bucket}/lake", "land", "--from", str(source), "--to", f"s3://{bucket}/lake/raw", env=env)
    deadline = time.monotonic() + 120
    while not client.list_multipart_uploads(Bucket=bucket).get("Uploads"):
        assert proc.poll() is None and time.monotonic() < deadline, "land ended before its multipart upload"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    finish(proc)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert "lake/raw/" + big.relative_to(source).as_posix() not in keys  # a killed upload is no object
    done = cli(f"s3://{bucket}/lake", "land", "--from", str(source), "--to", f"s3://{bucket}/lake/raw", env=env)
    assert_clean_ending(done, ok=True)
    files = {p.relative_to(source).as_posix(): p for p in source.rglob("*") if p.is_file()}
    stored = {o["Key"][len("lake/raw/"):] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert stored == set(files)
    for name, path in files.items():
        body = client.get_object(Bucket=bucket, Key=f"lake/raw/{name}")["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(path.read_bytes()).digest(), name


@pytest.mark.parametrize("command", [["run", "--pending"], ["runs"]])
def test_no_credentials_is_one_line(moto, command):
    env = _s3_env(moto)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)
    env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
    done = cli("s3://lake-x/lake", *command, env=env)
    line = assert_clean_ending(done, ok=False)
    assert "no S3 credentials" in line, line


# ---------------------------------------------------------------- paths as named

@pytest.mark.parametrize("name", ["lake with space", "läke-ünïcode", "lake#hash", "lake+plus&and=eq;semi"])
def test_odd_lake_paths(raw_zone, reference, tmp_path, name):
    lake = fresh_lake(raw_zone, tmp_path / name)
    done = cli(lake, "run", "--pending")
    assert_clean_ending(done, ok=True)
    assert_same_tables(lake, reference["pending"])
    again = cli(lake, "run", "--pending")
    assert_clean_ending(again, ok=True)
    assert "nothing pending" in again.stdout


@pytest.mark.parametrize(("name", "char"), [("lake%41percent", "'%'"), ("lake [1]", "'['")])
def test_a_path_delta_rs_cannot_use_is_refused_on_the_rust_engine(raw_zone, tmp_path, name, char):
    """delta-rs reads `%41` in a local table path as `A` when it reads the log but not when it writes the data, and
    takes `[` for the start of an IPv6 host: the embedded engine refuses such a root in one line (exit 2) instead
    of writing tables it cannot read, or panicking."""
    lake = fresh_lake(raw_zone, tmp_path / name)
    done = cli(lake, "run", "--pending")
    line = assert_clean_ending(done, ok=False)
    assert done.returncode == 2 and char in line and "jvm engine" in line, line
    assert not (tmp_path / "lakeApercent").exists() and not (lake / "silver").exists()
