"""Object storage without a JVM or delta-rs: credentials refused and masked, landing, listings with ETags, and
`--pending`'s comparison, against a real S3 API on 127.0.0.1 (moto in server mode)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from lakehouse import landing
from lakehouse.errors import SettingsError
from lakehouse.pipeline.ingested import pending_work
from lakehouse.redaction import redact
from lakehouse.settings import Settings
from lakehouse.sources.files import list_raw
from lakehouse.specs import load_catalog
from lakehouse.storage import list_objects, refuse_credentials, s3_client
from lakehouse.tables.paths import LakeLayout
from tests.conftest import CONF

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("root", [
    f"s3://AKIAEXAMPLE:{SECRET}@bucket/lake",
    f"s3://{SECRET}@bucket/lake",
    f"s3a://AKIAEXAMPLE:{SECRET}@bucket/lake",
    f"s3://bucket/lake?secret_key={SECRET}",
])
def test_a_root_with_credentials_is_refused_without_echoing_them(root):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"LAKEHOUSE_ROOT": root})
    assert "holds credentials" in str(err.value)
    assert SECRET not in str(err.value) and "AKIAEXAMPLE" not in str(err.value)


@pytest.mark.parametrize("root", ["s3://bucket/lake", "lake", "/data/lake", "s3://bucket/a@b-folder"])
def test_plain_roots_pass(root):
    if "@" in root:  # an @ in the path (not in the host part) is a folder name, not credentials
        refuse_credentials(root, "root")
    else:
        assert Settings.from_env({"LAKEHOUSE_ROOT": root}).lake_root == root


def test_the_cli_refuses_such_a_root_with_exit_2_and_no_secret(tmp_path):
    env = {**os.environ, "LAKEHOUSE_ROOT": f"s3://AKIAEXAMPLE:{SECRET}@bucket/lake", "LAKEHOUSE_CONF_DIR": str(CONF)}
    for args in (["run", "--date", "2024-07-01"], ["plan"], ["quality"], ["runs"]):
        done = subprocess.run([sys.executable, "-m", "lakehouse.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "holds credentials" in done.stderr
        assert SECRET not in done.stdout + done.stderr and "AKIAEXAMPLE" not in done.stdout + done.stderr


def test_in_json_mode_the_refusal_is_one_json_record():
    env = {**os.environ, "LAKEHOUSE_ROOT": f"s3://AKIAEXAMPLE:{SECRET}@bucket/lake", "LAKEHOUSE_LOG_FORMAT": "json"}
    done = subprocess.run([sys.executable, "-m", "lakehouse.cli", "runs"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr == ""
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["level"] == "ERROR" and "holds credentials" in record["message"]
    assert SECRET not in done.stdout and "AKIAEXAMPLE" not in done.stdout


def test_redact_masks_the_secret_variables_of_the_process(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN")
    text = f"signature for {SECRET} with token FwoGZXIvYXdzEXAMPLETOKEN failed"
    assert redact(text) == "signature for *** with token *** failed"


# ---------------------------------------------------------------- landing

def _tree(root, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_land_uploads_the_layout_then_skips_what_is_unchanged(s3, tmp_path):
    big = os.urandom(11 * 1024 * 1024 + 123)  # multipart: three parts of 5 MiB, the last one short
    _tree(tmp_path / "raw", {"sales/date=2024-07-01/a.csv": b"id,x\n1,2\n", "sales/date=2024-07-01/big.csv": big,
                             "products/date=2024-07-01/p.json": b'{"id": 1}\n', "sales/.DS_Store": b"junk"})
    lines: list[str] = []
    landing.PROGRESS_EVERY_SECONDS = 0.0
    try:
        first = landing.land(str(tmp_path / "raw"), f"s3://{s3}/lake/raw", tell=lines.append,
                             multipart_threshold=5 * 1024 * 1024, part_size=5 * 1024 * 1024)
    finally:
        landing.PROGRESS_EVERY_SECONDS = 5.0
    assert sorted(first.uploaded) == ["lake/raw/products/date=2024-07-01/p.json", "lake/raw/sales/date=2024-07-01/a.csv",
                                      "lake/raw/sales/date=2024-07-01/big.csv"]
    assert first.skipped == [] and first.bytes_uploaded == len(big) + 9 + 10
    assert any("big.csv" in line and "%" in line for line in lines)  # progress of the multipart upload
    client = s3_client()
    body = client.get_object(Bucket=s3, Key="lake/raw/sales/date=2024-07-01/big.csv")["Body"].read()
    assert body == big
    head = client.head_object(Bucket=s3, Key="lake/raw/sales/date=2024-07-01/a.csv", ChecksumMode="ENABLED")
    assert head["Metadata"]["sha256"] == landing.sha256_of(str(tmp_path / "raw/sales/date=2024-07-01/a.csv"))

    again = landing.land(str(tmp_path / "raw"), f"s3://{s3}/lake/raw")
    assert again.uploaded == [] and len(again.skipped) == 3

    (tmp_path / "raw/sales/date=2024-07-01/a.csv").write_bytes(b"id,x\n1,3\n")  # same size, other bytes
    third = landing.land(str(tmp_path / "raw"), f"s3://{s3}/lake/raw")
    assert third.uploaded == ["lake/raw/sales/date=2024-07-01/a.csv"] and len(third.skipped) == 2


def test_land_refuses_what_it_cannot_do(s3, tmp_path):
    from lakehouse.errors import UsageError

    with pytest.raises(UsageError):
        landing.land(str(tmp_path / "nowhere"), f"s3://{s3}/raw")
    with pytest.raises(SettingsError):
        landing.land(str(tmp_path), "/local/target")


def test_listing_pages_past_a_thousand_objects(s3):
    client = s3_client()
    for i in range(1005):
        client.put_object(Bucket=s3, Key=f"many/date=2024-07-01/f{i:04d}.csv", Body=b"x")
    keys = [o.key for o in list_objects(f"s3://{s3}/many")]
    assert len(keys) == 1005 and keys[0] == "date=2024-07-01/f0000.csv"
    assert all(o.etag and o.size == 1 for o in list_objects(f"s3://{s3}/many"))


# ---------------------------------------------------------------- raw zone on S3 and --pending

def _ingested_state(files_by_dataset):
    return {(name, f.path): {"status": "ingested", "size": f.size, "modified_at": f.mtime, "etag": f.etag,
                             "partition_date": day}
            for name, days in files_by_dataset.items() for day, files in days.items() for f in files}


def test_pending_on_s3_compares_etag_and_size(s3, tmp_path):
    catalog = load_catalog(str(CONF))
    spec = catalog.datasets["sales"]
    client = s3_client()
    for day in ("2024-07-01", "2024-07-02"):
        client.put_object(Bucket=s3, Key=f"lake/raw/sales/date={day}/part-0.csv", Body=f"{day}\n".encode())
    client.put_object(Bucket=s3, Key="lake/raw/sales/date=2024-07-02/README.md", Body=b"not data")
    layout = LakeLayout(f"s3://{s3}/lake")
    listing = list_raw(spec, layout)
    assert sorted(listing.days) == [dt.date(2024, 7, 1), dt.date(2024, 7, 2)]
    assert listing.skipped[dt.date(2024, 7, 2)] == [f"s3://{s3}/lake/raw/sales/date=2024-07-02/README.md"]
    state = _ingested_state({"sales": listing.days})
    only_sales = type(catalog)(catalog.conf_dir, datasets={"sales": spec})

    # the same bytes uploaded again: a new modification time, the same ETag and size: nothing pending
    client.put_object(Bucket=s3, Key="lake/raw/sales/date=2024-07-01/part-0.csv", Body=b"2024-07-01\n")
    assert pending_work(only_sales, layout, state).dates == {}

    # one changed object: exactly its partition is pending
    client.put_object(Bucket=s3, Key="lake/raw/sales/date=2024-07-02/part-0.csv", Body=b"2024-07-0X\n")
    work = pending_work(only_sales, layout, state)
    assert work.dates == {"sales": [dt.date(2024, 7, 2)]}
    assert work.changed == {"sales": [f"s3://{s3}/lake/raw/sales/date=2024-07-02/part-0.csv"]}


def test_look_back_bounds_pending(s3):
    catalog = load_catalog(str(CONF))
    spec = catalog.datasets["sales"]
    today = dt.datetime.now(dt.UTC).date()
    client = s3_client()
    for back in (1, 3, 20):
        day = today - dt.timedelta(days=back)
        client.put_object(Bucket=s3, Key=f"lake/raw/sales/date={day}/part-0.csv", Body=b"x\n")
    only_sales = type(catalog)(catalog.conf_dir, datasets={"sales": spec})
    layout = LakeLayout(f"s3://{s3}/lake")
    since = today - dt.timedelta(days=7)
    assert pending_work(only_sales, layout, {}, since).dates == {
        "sales": [today - dt.timedelta(days=3), today - dt.timedelta(days=1)]}
    assert len(pending_work(only_sales, layout, {}).dates["sales"]) == 3


def test_partition_folders_whose_parts_are_not_a_date_are_listed_as_invalid(tmp_path):
    spec = load_catalog(CONF).datasets["customers"]  # year=/month=/day= folders
    base = tmp_path / "raw" / "customers"
    for folder in ("year=2024/month=02/day=29", "year=2024/month=13/day=01", "year=2023/month=02/day=29",
                   "year=24/month=1/day=1"):
        (base / folder).mkdir(parents=True)
        (base / folder / "customers.parquet").write_bytes(b"PAR1")
    (base / "year=2024").joinpath("stray.parquet").write_bytes(b"PAR1")  # above the partition level
    listing = list_raw(spec, LakeLayout(str(tmp_path)))
    assert sorted(listing.days) == [dt.date(2024, 2, 29)]
    assert listing.invalid == {
        f"{base}/year=2023/month=02/day=29": "not a date: yyyy=2023, mm=02, dd=29",
        f"{base}/year=2024/month=13/day=01": "not a date: yyyy=2024, mm=13, dd=01",
        f"{base}/year=24/month=1/day=1": "not a date: yyyy=24, mm=1, dd=1"}
    assert listing.skipped == {None: [f"{base}/year=2024/stray.parquet"]}
