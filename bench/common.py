"""What the benchmarks share: where results and cached raw files go, the session, a peak-memory sampler, the
sample data generated once, and best-of timing."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CACHE = REPO / "bench" / ".cache"
STAGE_RUNS = 7


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def session():
    from lakehouse.session import build_session
    from lakehouse.settings import Settings

    spark = build_session(Settings(engine="rust"), "lakehouse-bench", extra={
        "spark.master": "local[2]", "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "8"})
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class PeakRss:
    """Samples the resident memory of this process (Python, pyarrow, delta-rs) and of its children (the JVM)
    every 0.2 s; keeps the peak of the sum and of each side, and the timeline."""

    def __init__(self) -> None:
        self.peak = self.peak_python = self.peak_jvm = 0
        self.timeline: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            pass
        return 0

    @staticmethod
    def _tree_rss(pid: int) -> int:
        total = PeakRss._rss(pid)
        try:
            for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                total += PeakRss._tree_rss(int(child))
        except (FileNotFoundError, ProcessLookupError):
            pass
        return total

    def _run(self) -> None:
        start = time.perf_counter()
        while not self._stop.is_set():
            python = self._rss(os.getpid())
            jvm = self._tree_rss(os.getpid()) - python
            self.peak = max(self.peak, python + jvm)
            self.peak_python = max(self.peak_python, python)
            self.peak_jvm = max(self.peak_jvm, jvm)
            self.timeline.append((round(time.perf_counter() - start, 1), python, jvm))
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def generate(lake: Path, days: int, rows: int, seed: int, end: dt.date) -> None:
    """The sample generator's raw files for these arguments, generated once into bench/.cache (the output is
    deterministic) and hard-linked into `lake`: the pipeline only reads raw files."""
    from lakehouse.sample.retail import RetailGenerator

    cached = CACHE / f"raw-{days}d-{rows}r-{seed}s-{end.isoformat()}"
    if not (cached / "done").exists():
        shutil.rmtree(cached, ignore_errors=True)
        RetailGenerator(cached, days=days, rows_per_day=rows, seed=seed, end_date=end).write()
        (cached / "done").touch()
    shutil.copytree(cached / "raw", lake / "raw", copy_function=os.link, dirs_exist_ok=True)


def timed(action, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best
