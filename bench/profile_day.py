"""Where a day's time goes: day 2 of a generated lake (after day 1) through the product in this process, on
`local[2]`, with Spark's event log on. Per dataset and gold table: its wall-clock seconds, its timed steps (the
outcome's timings), the Spark jobs it started, the seconds in which at least one of them ran, and the rest, in
which only the driver worked (planning, listing, delta-rs commits, Python). Run alone:

    python bench/profile_day.py [ROWS]          # default 1000000 sales rows a day; prints a table and JSON
    python bench/profile_day.py [ROWS] --jobs   # and each part's Spark jobs: when, how long, which action
    python bench/profile_day.py [ROWS] --engine jvm   # the same day on delta-spark (needs LAKEHOUSE_SPARK_JARS)

The figures name the work, not a target: `bench/versus.py` times whole processes against the peers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lakehouse.telemetry import Sink

REPO = Path(__file__).resolve().parents[1]
END = dt.date(2026, 11, 20)


class Windows(Sink):
    """A telemetry sink noting when each dataset and gold table started and finished (epoch milliseconds)."""

    name = "profile windows"

    def __init__(self) -> None:
        self.open: dict[str, float] = {}
        self.spans: list[tuple[str, float, float, dict[str, float]]] = []

    def _start(self, name: str) -> None:
        self.open[name] = time.time() * 1000

    def _end(self, name: str, steps: dict[str, float]) -> None:
        self.spans.append((name, self.open.pop(name), time.time() * 1000, steps))

    def dataset_started(self, run, spec, raw_folder) -> None:
        self._start(spec.name)

    def dataset_finished(self, run, spec, outcome, error, tables) -> None:
        self._end(spec.name, dict(outcome.timings))

    def gold_started(self, run, agg) -> None:
        self._start(f"gold {agg.name}")

    def gold_finished(self, run, agg, gold, error, tables) -> None:
        self._end(f"gold {agg.name}", {})


def spark_jobs(folder: Path) -> list[tuple[float, float, str]]:
    """(submitted, completed epoch milliseconds, name) of every Spark job in the event log under `folder`; the
    name is its last stage's (the action and where it was called)."""
    jobs: dict[int, list] = {}
    for log in folder.rglob("events_*"):
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["Event"] == "SparkListenerJobStart":
                stages = event.get("Stage Infos") or [{}]
                name = max(stages, key=lambda s: s.get("Stage ID", 0)).get("Stage Name", "?")
                jobs[event["Job ID"]] = [event["Submission Time"], event["Submission Time"], name]
            elif event["Event"] == "SparkListenerJobEnd" and event["Job ID"] in jobs:
                jobs[event["Job ID"]][1] = event["Completion Time"]
    return sorted((s, e, n) for s, e, n in jobs.values())


def busy_seconds(jobs: list[tuple[float, float, str]], start: float, end: float) -> float:
    """Seconds of [start, end] in which at least one job ran."""
    total, reach = 0.0, start
    for s, e, _ in jobs:
        s, e = max(s, reach), min(e, end)
        if e > s:
            total += e - s
            reach = e
    return total / 1000


def profile(rows: int, work: Path, engine_name: str = "rust") -> dict:
    from pyspark.sql import SparkSession

    from lakehouse.pipeline.job import DailyJob
    from lakehouse.sample.retail import RetailGenerator
    from lakehouse.session import build_session
    from lakehouse.settings import Settings
    from lakehouse.specs import load_catalog
    from lakehouse.tables import select_engine
    from lakehouse.tables.paths import LakeLayout
    from lakehouse.telemetry import Telemetry
    from lakehouse.telemetry.stages import StageLog

    lake, events = work / "lake", work / "events"
    events.mkdir(parents=True)
    RetailGenerator(lake, days=2, rows_per_day=rows, seed=42, end_date=END).write()
    spark = build_session(dataclasses.replace(Settings.from_env(), engine=engine_name, lake_root=str(lake)), "lakehouse-profile", extra={
        "spark.master": "local[2]", "spark.ui.enabled": "false", "spark.eventLog.enabled": "true",
        "spark.eventLog.compress": "false", "spark.eventLog.dir": events.as_uri()})
    catalog = load_catalog(REPO / "conf")
    engine = select_engine(spark, LakeLayout(str(lake)), engine_name)
    DailyJob(engine, catalog).run([END - dt.timedelta(days=1)])
    windows = Windows()
    DailyJob(engine, catalog, telemetry=Telemetry([StageLog(), windows])).run([END])
    SparkSession.getActiveSession().stop()  # the event log is complete once the session stops
    jobs = spark_jobs(events)
    first, last = windows.spans[0][1], windows.spans[-1][2]
    out: dict = {"rows": rows, "engine": engine_name, "parts": []}
    for name, start, end, steps in windows.spans:
        inside = [j for j in jobs if start <= j[0] <= end]
        part = {"name": name, "seconds": round((end - start) / 1000, 2), "spark_jobs": len(inside),
                "spark_busy_seconds": round(busy_seconds(jobs, start, end), 2),
                "steps": {k: round(v, 2) for k, v in steps.items()},
                "jobs": [{"at": round((j[0] - start) / 1000, 2), "seconds": round((j[1] - j[0]) / 1000, 2),
                          "name": j[2]} for j in inside]}
        part["driver_only_seconds"] = round(part["seconds"] - part["spark_busy_seconds"], 2)
        out["parts"].append(part)
    out["whole"] = {"seconds": round((last - first) / 1000, 2),
                    "spark_jobs": len([j for j in jobs if first <= j[0] <= last]),
                    "spark_busy_seconds": round(busy_seconds(jobs, first, last), 2)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="where a day's time goes, per part and Spark job")
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--jobs", action="store_true", help="list each part's Spark jobs")
    parser.add_argument("--engine", choices=("rust", "jvm"), default="rust")
    args = parser.parse_args()
    jobs = args.jobs
    work = Path(tempfile.mkdtemp(prefix="lakehouse-profile-"))
    try:
        out = profile(args.rows, work, args.engine)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'part':34} {'seconds':>8} {'jobs':>5} {'spark':>7} {'driver':>7}  steps")
    for p in [*out["parts"], {"name": "the day (first start to last end)", **out["whole"],
                              "driver_only_seconds": round(out["whole"]["seconds"]
                                                           - out["whole"]["spark_busy_seconds"], 2), "steps": {}}]:
        steps = " ".join(f"{k} {v}" for k, v in p["steps"].items())
        print(f"{p['name']:34} {p['seconds']:8.2f} {p['spark_jobs']:5d} {p['spark_busy_seconds']:7.2f} "
              f"{p['driver_only_seconds']:7.2f}  {steps}")
        if jobs:
            for job in p.get("jobs", []):
                print(f"    +{job['at']:6.2f} s {job['seconds']:6.2f} s  {job['name']}")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
