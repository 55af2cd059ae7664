"""The production engine on S3: delta-spark writes the lake through Spark's S3A connector (hadoop-aws and the AWS
SDK bundle, `make jars-s3a`) on `s3a://` against the local S3 API, reading the raw zone there too, and ends with
the tables the embedded engine writes on a local disk from the same raw files: a two-day backfill, a rerun with nothing pending (no new table version), and one changed raw object reloaded through `--pending`.

S3A is configured from the same AWS variables boto3 and delta-rs read (endpoint, region; credentials through
S3A's default chain), and no credential shows up in any output or stored object."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tests.conftest import CONF, require_jars
from tests.s3_server import moto_server, s3_env
from tests.test_s3_lake import D1, D2, KEY_ID, SECRET, SPARK_CONF, TABLES, Lake, _change_one_sales_row

pytestmark = [pytest.mark.s3, pytest.mark.jvm]


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    from lakehouse.sample.retail import RetailGenerator

    jars = os.environ.get("LAKEHOUSE_S3A_JARS", "")
    if "hadoop-aws" not in jars or "bundle" not in jars:
        require_jars("the S3A test needs LAKEHOUSE_S3A_JARS (Delta's jars, hadoop-aws and the AWS SDK bundle): "
                     "run `make jars-s3a` (needs Maven); `make test-s3` then passes them")
    base = tmp_path_factory.mktemp("s3a")
    RetailGenerator(str(base / "gen"), days=2, rows_per_day=120, seed=5, end_date=D2).write()
    raw = base / "gen" / "raw"
    with moto_server() as endpoint:
        bucket = "lake-" + uuid.uuid4().hex[:10]
        env = {**os.environ, **s3_env(endpoint, SECRET, KEY_ID), "LAKEHOUSE_CONF_DIR": str(CONF),
               "LAKEHOUSE_SPARK_CONF": SPARK_CONF}
        for name in ("LAKEHOUSE_STAGING", "LAKEHOUSE_SPARK_JARS", "LAKEHOUSE_ENGINE"):
            env.pop(name, None)
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEY_ID,
                              aws_secret_access_key=SECRET)
        client.create_bucket(Bucket=bucket)
        jvm = Lake(f"s3a://{bucket}/lake", {**env, "LAKEHOUSE_ENGINE": "jvm", "LAKEHOUSE_SPARK_JARS": jars})
        local = Lake(str(base / "local"), {**env, "LAKEHOUSE_ENGINE": "rust"})
        shutil.copytree(raw, base / "local" / "raw")
        jvm.cli("land", "--from", str(raw), "--to", f"s3://{bucket}/lake/raw")
        facts: dict[str, object] = {}
        for lake in (jvm, local):
            facts[f"first_{lake is jvm}"] = lake.cli("run", "--start", str(D1), "--end", str(D2)).stdout
        before = jvm.read("versions")
        facts["rerun"] = jvm.cli("run", "--pending").stdout
        facts["versions"] = (before, jvm.read("versions"))

        key = f"lake/raw/sales/date={D2}/sales.csv"
        changed = _change_one_sales_row(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        client.put_object(Bucket=bucket, Key=key, Body=changed)
        (base / "local" / "raw" / "sales" / f"date={D2}" / "sales.csv").write_bytes(changed)
        facts["pending"] = jvm.cli("run", "--pending").stdout
        local.cli("run", "--pending")
        facts["tables"] = (jvm.read(), local.read())
        facts["objects"] = [(o["Key"], client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
                            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                            for o in page.get("Contents", [])]
        yield jvm, local, facts


def test_the_jvm_engine_on_s3a_writes_what_the_rust_engine_writes_locally(lakes):
    jvm, _, facts = lakes
    assert "engine=jvm" in facts["first_True"] and "s3a://" in facts["first_True"], facts["first_True"][:500]
    on_s3a, on_disk = facts["tables"]
    assert set(on_s3a) == set(TABLES)
    for table in TABLES:
        assert on_s3a[table] == on_disk[table], table
    assert all(on_s3a[t] for t in TABLES if not t.startswith("quarantine/") and t != "_meta/rejected_files")
    # the table files are on S3: Delta logs written through S3A
    keys = [k for k, _ in facts["objects"]]
    assert any(k.startswith("lake/silver/sales/_delta_log/") and k.endswith(".json") for k in keys)


def test_a_rerun_on_s3a_writes_nothing_and_a_changed_object_reloads_its_date(lakes):
    _, _, facts = lakes
    assert "nothing pending" in facts["rerun"]
    before, after = facts["versions"]
    assert before == after
    assert f"for {D2}" in facts["pending"] and f"for {D1}" not in facts["pending"], facts["pending"]


def test_no_credential_in_any_output_or_stored_object_on_s3a(lakes):
    jvm, local, facts = lakes
    for text in jvm.outputs + local.outputs:
        assert SECRET not in text and KEY_ID not in text
    for key, data in facts["objects"]:
        assert SECRET.encode() not in data and KEY_ID.encode() not in data, key
