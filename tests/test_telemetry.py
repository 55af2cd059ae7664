"""Telemetry a platform plugs in: JSON log lines for every stage, metrics pushed to a real Pushgateway, OpenLineage
events received over HTTP, and endpoints that are down costing one warning each, never the run."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest

from lakehouse.pipeline.job import DailyJob
from lakehouse.sample.retail import RetailGenerator
from lakehouse.specs import load_catalog
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout
from lakehouse.tables.view import LakeView
from lakehouse.telemetry import Telemetry
from lakehouse.telemetry.logs import json_formatter
from lakehouse.telemetry.stages import STAGES, StageLog
from tests.conftest import CONF
from tests.s3_server import free_port, local_server

DAY = dt.date(2024, 7, 1)
DATASETS = ["campaigns", "customers", "products", "inventory", "sales"]
GOLD = ["daily_inventory_movement", "daily_sales_summary"]
STAGE_FIELDS = {"run_id", "dataset", "run_date", "stage", "rows_in", "rows_out", "duration_s", "status"}
PUSHGATEWAY = shutil.which("prometheus-pushgateway")


def _small_lake(root, days: int = 1) -> None:
    RetailGenerator(root, days=days, rows_per_day=40, seed=3, end_date=DAY + dt.timedelta(days=days - 1),
                    products=10, customers=20, stores=3).write()


class LineageReceiver:
    """An OpenLineage HTTP endpoint on 127.0.0.1: keeps every event POSTed to /api/v1/lineage."""

    def __init__(self) -> None:
        events = self.events = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                events.append((self.path, json.loads(body)))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def pushgateway():
    if PUSHGATEWAY is None:
        pytest.skip("prometheus-pushgateway is not installed (Debian package prometheus-pushgateway; `make setup` "
                    "installs it where the machine allows)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with local_server([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"], url + "/-/ready", "the Pushgateway"):
        yield url


@pytest.fixture(scope="module")
def observed_run(tmp_path_factory, pushgateway):
    """One day run by the CLI in its own process with JSON logs, a Pushgateway and a lineage endpoint."""
    root = tmp_path_factory.mktemp("telemetry") / "lake"
    _small_lake(root)
    receiver = LineageReceiver()
    env = {**os.environ, "LAKEHOUSE_ROOT": str(root), "LAKEHOUSE_CONF_DIR": str(CONF), "LAKEHOUSE_ENGINE": "rust",
           "LAKEHOUSE_LOG_FORMAT": "json", "LAKEHOUSE_PUSHGATEWAY": pushgateway, "OPENLINEAGE_URL": receiver.url,
           "LAKEHOUSE_SPARK_CONF": json.dumps({"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"})}
    started = time.time()
    try:
        done = subprocess.run([sys.executable, "-m", "lakehouse.cli", "run", "--date", str(DAY)], env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        receiver.close()
    assert done.returncode == 0, done.stderr[-4000:]
    return root, done, receiver.events, started


# the JVM's own notice as it starts (not a log line: no logging framework prints it)
JVM_NOTICE = "WARNING: Using incubator modules: jdk.incubator.vector"


def _records(done: subprocess.CompletedProcess[str]) -> list[dict]:
    """The job's log records (stdout: every line one JSON object), after checking that Spark's own lines on
    stderr are JSON objects of the same shape too."""
    records = []
    for line in done.stdout.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict) and set(record) >= {"time", "level", "logger", "message"}, line
        records.append(record)
    spark_lines = [line for line in done.stderr.splitlines() if line.strip() and line != JVM_NOTICE]
    for line in spark_lines:
        record = json.loads(line)
        assert set(record) >= {"time", "level", "logger", "message"} and record["source"] == "spark", line
    return records


# ---------------------------------------------------------------- JSON logs

def test_every_line_is_json_and_every_stage_is_logged(observed_run):
    root, done, _, _ = observed_run
    records = _records(done)
    stages = [r for r in records if r.get("event") == "stage"]
    runs = {r["run_id"] for r in stages}
    assert len(runs) == 1
    (run,) = LakeView(str(root)).runs()
    assert runs == {run.run_id}
    for event in stages:
        assert set(event) >= STAGE_FIELDS, event
        assert event["run_date"] == str(DAY) and event["status"] in ("ok", "reused", "no_data")
        assert isinstance(event["duration_s"], float | int) and event["duration_s"] >= 0
    seen = {(e["dataset"], e["stage"]) for e in stages}
    assert {(d, s) for d in DATASETS for s in STAGES} <= seen
    assert {(g, "gold") for g in GOLD} <= seen and (None, "meta") in seen
    detail = LakeView(str(root)).run(run.run_id)
    assert detail is not None
    by_dataset = {d["name"]: d for d in detail.tables if d["layer"] == "silver"}
    for name in DATASETS:
        mine = {e["stage"]: e for e in stages if e["dataset"] == name}
        assert mine["read"]["rows_out"] == by_dataset[name]["rows_read"]
        assert mine["quarantine"]["rows_out"] == by_dataset[name]["rows_quarantined"]
        assert mine["silver"]["rows_out"] == by_dataset[name]["rows_to_silver"]
        assert mine["check"]["rows_out"] == mine["check"]["rows_in"] - mine["quarantine"]["rows_out"]
    assert [r["status"] for r in records if r.get("event") == "run"] == ["started", "ok"]


def test_a_failed_stage_carries_the_cause_and_the_stack(spark, tmp_path, monkeypatch):
    from lakehouse.pipeline.dataset import DatasetLoad

    _small_lake(tmp_path / "lake")
    original = DatasetLoad.merge_silver

    def failing(self, *args, **kwargs):
        if self.spec.name == "sales":
            raise RuntimeError("disk full while merging sales")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DatasetLoad, "merge_silver", failing)
    stream = _capture("lakehouse.stage")
    engine = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")
    result = DailyJob(engine, load_catalog(str(CONF)), telemetry=Telemetry([StageLog()])).run_day(DAY)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(o.status == "failed" for o in result.datasets)
    failed = [r for r in lines if r.get("event") == "stage" and r["status"] == "failed"]
    assert [(r["dataset"], r["stage"]) for r in failed] == [("sales", "silver")]
    assert failed[0]["level"] == "ERROR" and "disk full while merging sales" in failed[0]["error"]
    assert "Traceback" in failed[0]["stack"] and "RuntimeError: disk full" in failed[0]["stack"]
    assert all(r["status"] == "ok" for r in lines if r.get("dataset") == "products")
    assert [r["status"] for r in lines if r.get("event") == "run"] == ["started", "failed"]


def _capture(logger: str):
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    log = logging.getLogger(logger)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return stream


# ---------------------------------------------------------------- Prometheus

def _pushed(url: str) -> dict[tuple[tuple[str, str], ...], dict]:
    with urllib.request.urlopen(url + "/api/v1/metrics", timeout=5) as response:
        groups = json.loads(response.read())["data"]
    return {tuple(sorted(g["labels"].items())): g for g in groups}


def _value(group: dict, metric: str, **labels: str) -> float:
    for sample in group[metric]["metrics"]:
        if all(sample["labels"].get(k) == v for k, v in labels.items()):
            return float(sample["value"])
    raise KeyError(f"{metric} {labels}")


def test_metrics_reach_the_pushgateway(observed_run, pushgateway):
    root, done, _, started = observed_run
    groups = _pushed(pushgateway)
    (run,) = LakeView(str(root)).runs()
    detail = LakeView(str(root)).run(run.run_id)
    assert detail is not None
    for d in (t for t in detail.tables if t["layer"] == "silver"):
        group = groups[(("dataset", d["name"]), ("job", "lakehouse"))]
        assert _value(group, "lakehouse_dataset_rows_read") == d["rows_read"]
        assert _value(group, "lakehouse_dataset_rows_quarantined") == d["rows_quarantined"]
        assert _value(group, "lakehouse_dataset_rows_merged") == d["rows_to_silver"]
        assert _value(group, "lakehouse_dataset_files_rejected") == 0
        assert _value(group, "lakehouse_dataset_last_success_timestamp_seconds") >= int(started)
        assert 0 <= _value(group, "lakehouse_dataset_quality_score") <= 1
        for stage in STAGES:
            assert _value(group, "lakehouse_dataset_stage_duration_seconds", stage=stage) >= 0
    for table in GOLD:
        gold = groups[(("job", "lakehouse"), ("table", table))]
        assert _value(gold, "lakehouse_gold_rows") > 0
    run_group = groups[(("job", "lakehouse"), ("scope", "run"))]
    assert _value(run_group, "lakehouse_run_failed", engine="rust") == 0
    assert _value(run_group, "lakehouse_run_last_success_timestamp_seconds") >= int(started)


# ---------------------------------------------------------------- OpenLineage

# The OpenLineage run event as the spec defines it (2-0-2), for the parts this product emits. The client ships its
# spec as generated Python classes, not as JSON files: each facet's _schemaURL is checked against its class below.
_URI = {"type": "string", "pattern": r"^[a-z][a-z0-9+.-]*:"}
_FACET = {"type": "object", "required": ["_producer", "_schemaURL"],
          "properties": {"_producer": _URI, "_schemaURL": _URI}}
_DATASET = {"type": "object", "required": ["namespace", "name"],
            "properties": {"namespace": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1},
                           "facets": {"type": "object", "additionalProperties": _FACET}}}
RUN_EVENT = {
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": _URI, "schemaURL": _URI,
        "run": {"type": "object", "required": ["runId"],
                "properties": {"runId": {"type": "string", "format": "uuid"},
                               "facets": {"type": "object", "additionalProperties": _FACET}}},
        "job": {"type": "object", "required": ["namespace", "name"],
                "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                               "facets": {"type": "object", "additionalProperties": _FACET}}},
        "inputs": {"type": "array", "items": {**_DATASET, "properties": {
            **_DATASET["properties"], "inputFacets": {"type": "object", "additionalProperties": _FACET}}}},
        "outputs": {"type": "array", "items": {**_DATASET, "properties": {
            **_DATASET["properties"], "outputFacets": {"type": "object", "additionalProperties": _FACET}}}},
    },
}


def _client_schema_urls() -> set[str]:
    """The _schemaURL of every facet class the client generates from the spec."""
    import importlib
    import pkgutil

    import openlineage.client.generated as generated

    urls = set()
    for info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"{generated.__name__}.{info.name}")
        for value in vars(module).values():
            getter = getattr(value, "_get_schema", None)
            if isinstance(value, type) and callable(getter):
                urls.add(getter())
    return urls


def _facets(event: dict) -> list[dict]:
    found = list(event["run"].get("facets", {}).values()) + list(event["job"].get("facets", {}).values())
    for d in event.get("inputs", []) + event.get("outputs", []):
        for key in ("facets", "inputFacets", "outputFacets"):
            found += list(d.get(key, {}).values())
    return found


def test_lineage_events_follow_the_spec_with_inputs_outputs_and_counts(observed_run):
    root, _, received, _ = observed_run
    events = [body for path, body in received if path == "/api/v1/lineage"]
    assert events and len(events) == len(received)
    checker = jsonschema.FormatChecker()
    known = _client_schema_urls()
    for event in events:
        jsonschema.validate(event, RUN_EVENT, format_checker=checker)
        dt.datetime.fromisoformat(event["eventTime"])
        uuid.UUID(event["run"]["runId"])
        for facet in _facets(event):
            assert facet["_schemaURL"] in known, facet["_schemaURL"]
    by_job: dict[str, list[dict]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event)
    parent = [e["eventType"] for e in by_job["daily_aggregation"]]
    assert parent == ["START", "COMPLETE"]
    parent_id = by_job["daily_aggregation"][0]["run"]["runId"]
    (run,) = LakeView(str(root)).runs()
    detail = LakeView(str(root)).run(run.run_id)
    assert detail is not None
    counts = {d["name"]: d for d in detail.tables if d["layer"] == "silver"}
    for name in DATASETS:
        start, complete = by_job[f"daily_aggregation.{name}"]
        assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
        assert complete["run"]["facets"]["parent"]["run"]["runId"] == parent_id
        (raw,) = complete["inputs"]
        assert raw["namespace"] == "file" and f"/raw/{name}/" in raw["name"]
        assert raw["inputFacets"]["inputStatistics"]["rowCount"] == counts[name]["rows_read"]
        assert raw["facets"]["dataQualityAssertions"]["assertions"]
        outputs = {o["name"].rsplit("/", 2)[-2]: o for o in complete["outputs"]}
        assert set(outputs) == {"bronze", "quarantine", "silver"}
        assert outputs["silver"]["outputFacets"]["outputStatistics"]["rowCount"] == counts[name]["rows_to_silver"]
        assert outputs["quarantine"]["outputFacets"]["outputStatistics"]["rowCount"] == \
            counts[name]["rows_quarantined"]
        assert outputs["bronze"]["outputFacets"]["outputStatistics"]["rowCount"] == counts[name]["rows_read"]
        assert {f["name"] for f in outputs["silver"]["facets"]["schema"]["fields"]} >= {"_source_file", "_run_id"}
    sales_silver = by_job["daily_aggregation.sales"][1]["outputs"]
    assert any(f["name"] == "transaction_id" for o in sales_silver if o["name"].endswith("/silver/sales")
               for f in o["facets"]["schema"]["fields"])
    for table in GOLD:
        start, complete = by_job[f"daily_aggregation.gold.{table}"]
        assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
        (gold,) = complete["outputs"]
        assert gold["name"].endswith(f"/gold/{table}") and gold["outputFacets"]["outputStatistics"]["rowCount"] > 0
        assert any(i["name"].endswith("/silver/sales") or i["name"].endswith("/silver/inventory")
                   for i in complete["inputs"])


# ---------------------------------------------------------------- endpoints down

def test_unreachable_endpoints_warn_once_and_the_run_succeeds(spark, tmp_path, caplog):
    _small_lake(tmp_path / "lake", days=2)
    closed = f"http://127.0.0.1:{free_port()}"
    telemetry = Telemetry.from_env({"LAKEHOUSE_PUSHGATEWAY": closed, "OPENLINEAGE_URL": closed})
    engine = select_engine(spark, LakeLayout(str(tmp_path / "lake")), "rust")
    with caplog.at_level(logging.WARNING, logger="lakehouse.telemetry"):
        results = DailyJob(engine, load_catalog(str(CONF)), telemetry=telemetry).run([DAY, DAY + dt.timedelta(1)])
    assert not any(r.failed for r in results)
    assert all(o.status in ("ok", "no_data") for r in results for o in r.datasets)
    warnings = [r.getMessage() for r in caplog.records if r.name == "lakehouse.telemetry"]
    assert len(warnings) == 2, warnings  # one per sink, for the whole process
    assert any(w.startswith("Pushgateway metrics is off") for w in warnings)
    assert any(w.startswith("OpenLineage events is off") for w in warnings)
