"""`on_type_mismatch: rescue`: a value that does not fit its declared type keeps its row in silver, with the column
null and the value as read in `_rescued_data` (a warning in the quality metrics); the default quarantines the row.
CSV text, a JSON object where a scalar is declared and a Parquet value too large for its column, on both engines,
with every raw row accounted for."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.cli import main
from tests.conftest import ENGINES, require_jvm

DAY = dt.date(2024, 6, 3)

READINGS = """\
name: readings
source: {{format: csv, path: raw/readings, options: {{header: true}}}}
schema: {{id: string not null, qty: int, price: "decimal(10,2)", at: timestamp}}
keys: [id]
on_type_mismatch: {policy}
"""
EVENTS = """\
name: events
source: {{format: json, path: raw/events}}
schema: {{id: string not null, n: int, label: string}}
keys: [id]
on_type_mismatch: {policy}
"""
METERS = """\
name: meters
source: {{format: parquet, path: raw/meters}}
schema: {{id: string not null, reading: int}}
keys: [id]
on_type_mismatch: {policy}
"""
CSV = """\
id,qty,price,at
r1,5,1.50,2024-06-03 10:00:00
r2,abc,2.00,2024-06-03 11:00:00
r3,7,x.y,not a time
r4, ,3.00,
,3,1.00,2024-06-03 12:00:00
"""
JSON_ROWS = [{"id": "e1", "n": 1, "label": "a"}, {"id": "e2", "n": {"deep": [1, 2]}, "label": "b"},
             {"id": "e3", "n": "seven", "label": ["x"]}]


def write_lake(tmp: Path, policy: str) -> tuple[Path, Path]:
    conf, lake = tmp / "conf", tmp / "lake"
    (conf / "datasets").mkdir(parents=True)
    (conf / "aggregations").mkdir()
    for name, text in (("readings", READINGS), ("events", EVENTS), ("meters", METERS)):
        (conf / "datasets" / f"{name}.yaml").write_text(text.format(policy=policy))
        (lake / "raw" / name / f"date={DAY}").mkdir(parents=True)
    (lake / "raw" / "readings" / f"date={DAY}" / "r.csv").write_text(CSV)
    (lake / "raw" / "events" / f"date={DAY}" / "e.json").write_text("".join(json.dumps(r) + "\n" for r in JSON_ROWS))
    pq.write_table(pa.table({"id": ["m1", "m2"], "reading": pa.array([12, 3_000_000_000], pa.int64())}),
                   lake / "raw" / "meters" / f"date={DAY}" / "m.parquet")
    return lake, conf


def table(lake: Path, name: str) -> list[dict]:
    path = lake / name
    return deltalake.DeltaTable(str(path)).to_pyarrow_table().to_pylist() if (path / "_delta_log").is_dir() else []


@pytest.fixture(scope="module", params=ENGINES)
def lakes(request, spark, tmp_path_factory):
    if request.param == "jvm":
        require_jvm(spark)
    out = {}
    for policy in ("rescue", "quarantine"):
        lake, conf = write_lake(tmp_path_factory.mktemp(f"rescue_{policy}_{request.param}"), policy)
        args = ["--lake-root", str(lake), "--conf-dir", str(conf), "--engine", request.param]
        assert main(["run", "--date", str(DAY), *args]) == 0
        out[policy] = lake
        if policy == "rescue":
            versions = {t: deltalake.DeltaTable(str(lake / t)).version() for t in ("silver/readings", "silver/events")}
            assert main(["run", "--date", str(DAY), *args]) == 0  # a rerun is a no-op
            assert {t: deltalake.DeltaTable(str(lake / t)).version() for t in versions} == versions
    return out


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in rows}


def test_rescued_values_keep_their_rows_in_silver(lakes):
    lake = lakes["rescue"]
    readings = by_id(table(lake, "silver/readings"))
    assert sorted(readings) == ["r1", "r2", "r3", "r4"]  # the row without its key is still quarantined
    assert readings["r1"]["_rescued_data"] is None and readings["r1"]["qty"] == 5
    assert readings["r2"]["qty"] is None and readings["r2"]["_rescued_data"] == [("qty", "abc")]
    assert readings["r3"]["price"] is None and readings["r3"]["at"] is None
    assert dict(readings["r3"]["_rescued_data"]) == {"price": "x.y", "at": "not a time"}
    assert readings["r4"]["_rescued_data"] is None  # a blank value is a null, not a mismatch
    events = by_id(table(lake, "silver/events"))
    assert sorted(events) == ["e1", "e2", "e3"]
    assert events["e2"]["n"] is None and json.loads(dict(events["e2"]["_rescued_data"])["n"]) == {"deep": [1, 2]}
    assert dict(events["e3"]["_rescued_data"]) == {"n": "seven", "label": '["x"]'}
    meters = by_id(table(lake, "silver/meters"))
    assert meters["m2"]["reading"] is None and dict(meters["m2"]["_rescued_data"]) == {"reading": "3000000000"}


def test_rescued_values_are_warnings_and_every_row_is_accounted_for(lakes):
    lake = lakes["rescue"]
    (quarantined,) = [r for r in table(lake, "quarantine/readings")]
    assert [e["check"] for e in quarantined["errors"]] == ["required"]
    runs = {r["name"]: r for r in table(lake, "_meta/runs") if r["layer"] == "silver"}
    expected = {"readings": (5, 1, 4, 2), "events": (3, 0, 3, 2), "meters": (2, 0, 2, 1)}
    for name, (read, quarantined_rows, to_silver, warned) in expected.items():
        r = runs[name]
        assert (r["rows_read"], r["rows_quarantined"], r["rows_to_silver"], r["rows_warned"]) == \
            (read, quarantined_rows, to_silver, warned), name
        assert r["rows_read"] == r["rows_to_silver"] + r["rows_quarantined"] + r["rows_duplicate"] + \
            r["rows_held_back"]
    quality = {(r["dataset"], r["check"]): r for r in table(lake, "_meta/quality")}
    mismatch = quality[("readings", "type_mismatch")]
    assert (mismatch["criticality"], mismatch["failed_rows"], mismatch["status"]) == ("warn", 2, "warn")


def test_the_default_quarantines_the_row_and_adds_no_column(lakes):
    lake = lakes["quarantine"]
    readings = table(lake, "silver/readings")
    assert sorted(r["id"] for r in readings) == ["r1", "r4"]
    assert "_rescued_data" not in readings[0]
    reasons = {json.loads(r["record"]).get("id"): sorted(e["check"] for e in r["errors"])
               for r in table(lake, "quarantine/readings")}
    assert reasons == {"r2": ["type_mismatch"], "r3": ["type_mismatch", "type_mismatch"], None: ["required"]}
    assert sorted(r["id"] for r in table(lake, "silver/events")) == ["e1"]
    assert sorted(r["id"] for r in table(lake, "silver/meters")) == ["m1"]
