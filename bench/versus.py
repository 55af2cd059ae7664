"""The product against a hand-written PySpark job and a pandas script (bench/peers/), all timed as whole
processes from the outside (JVM start included), on the same generated days, in the same bench run:

  day       day 2 of VERSUS_ROWS sales rows (after day 1): the product via spark-submit vs the Spark peer
            (target: at most 1.0x) and the pandas peer (reported); peak resident memory of each process tree.
            Also reported: the Spark peer with --keep (bronze and silver tables written by hand, day 1 first),
            the floor the tables the product keeps set, both for sales' tables alone and with `--every-table`
            for every table the product keeps (every dataset's bronze and silver, both gold tables; target: the
            product at most 1.2x of it)
  rerun     the same day again, nothing changed: at most 0.2x of its first load, and no new table version
  week      7 days x 2,000 rows through `--pending`: at most 20 s
  digest    the content digest of every raw file of the 1M-row day (how a changed file is known when its size and
            times are not): at most 5% of the product's day
  dimension one product's row changed in silver by hand, then `--pending`: the gold dates recomputed are at most
            the dates whose sales reference it (and the run's time is reported)
  cluster   day 1 and day 2 of each size in VERSUS_CLUSTER_ROWS (default 100000,1000000; one size or none skips
            it) on local-cluster[2,1,1024], two executor JVMs: the driver's peak memory (Python and its JVM, not
            the executors) stays flat, the largest size at most 1.25x the smallest
  big day   as `day`, with VERSUS_BIG_ROWS (default 5,000,000; 0 skips it)
  jvm       where Delta's jars are present (LAKEHOUSE_SPARK_JARS, or jars/lib after `make jars`): day 2 of
            VERSUS_ROWS through the product on its jvm engine (delta-spark), beside the Spark peer that keeps
            bronze, silver (MERGE) and gold (MERGE) with delta-spark; reported with the rust engine's figures

Run alone: `python bench/versus.py` (VERSUS_ROWS, default 1000000; 0 skips the day and the rerun). `make bench`
runs it after the stage benchmarks. Each target prints PASS or FAIL with the measured ratio.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
END = dt.date(2026, 11, 20)


def tree_rss(pid: int, leave_out: str | None = None) -> int:
    """Resident memory of `pid` and its descendants; a process whose command line holds `leave_out` is left out,
    with its own descendants."""
    total = 0
    try:
        if leave_out and leave_out in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            return 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += tree_rss(int(child), leave_out)
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def driver_rss(pid: int) -> int:
    """Resident memory of the driver's processes under `pid` (the Python process and the driver JVM): the tree
    without the executor JVMs of a local cluster and what they start (their Python workers)."""
    return tree_rss(pid, leave_out="CoarseGrainedExecutorBackend")


def run_process(argv: list[str], env: dict[str, str], rss: Callable[[int], int] = tree_rss) -> dict:
    """Wall-clock seconds and peak resident memory of the whole process tree (or what `rss` counts of it); its
    exit code and output."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], rss(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    sampler.join()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{output[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_gb": round(peak[0] / 2**30, 2), "output": output}


def generate(lake: Path, days: int, rows: int) -> None:
    from lakehouse.sample.retail import RetailGenerator

    RetailGenerator(lake, days=days, rows_per_day=rows, seed=42, end_date=END).write()


def env_for(lake: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_"))}
    env.update(PATH=f"{BIN}:{env.get('PATH', '')}", PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable, LAKEHOUSE_ROOT=str(lake),
               LAKEHOUSE_CONF_DIR=str(REPO / "conf"), LAKEHOUSE_ENGINE="rust")
    return env


def delta_jars() -> str:
    """Delta's jars for the jvm runs: LAKEHOUSE_SPARK_JARS, else what `make jars` fetched; '' when absent."""
    given = os.environ.get("LAKEHOUSE_SPARK_JARS", "")
    if "delta-spark" in given:
        return given
    return ",".join(str(p) for p in sorted((REPO / "jars" / "lib").glob("*.jar")))


def product(lake: Path, *args: str, jars: str = "") -> dict:
    """The product's day via spark-submit: the embedded engine, or with `jars` the jvm engine (delta-spark)."""
    env = env_for(lake)
    if jars:
        env["LAKEHOUSE_ENGINE"] = "jvm"
    return run_process([str(BIN / "spark-submit"), "--master", "local[2]", *(["--jars", jars] if jars else []),
                        "spark_jobs/daily_aggregation.py", *args], env)


def versions(lake: Path) -> dict[str, int]:
    from lakehouse.tables.view import LakeView

    view = LakeView(str(lake))
    names = [f"{layer}/sales" for layer in ("bronze", "silver", "quarantine")] + ["gold/daily_sales_summary"]
    return {n: view.history(n, 1)[0].version for n in names}


def verdict(name: str, measured: float, target: float, unit: str = "x") -> dict:
    ok = measured <= target
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {measured:.2f}{unit} (target <= {target}{unit})", flush=True)
    return {"measured": round(measured, 3), "target": target, "pass": ok}


def quote_scan_share(lake: Path, day: str, day_seconds: float) -> dict:
    """What finding quoted line breaks costs a CSV day without any: the probe of the day's sales files, which
    scans every byte for quotes (before, it read the header only), timed in this process, as a share of the
    product's whole day (target: at most 5%)."""
    from lakehouse.sources.files import RawFile
    from lakehouse.sources.probe import probe_csv
    from lakehouse.specs import load_catalog

    spec = load_catalog(REPO / "conf").datasets["sales"]
    files = sorted((lake / "raw" / "sales" / f"date={day}").glob("*.csv"))
    start = time.perf_counter()
    found = [probe_csv(spec, RawFile(str(f), f.stat().st_size, None)).multiline for f in files]
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in files)
    print(f"info  quote scan of {len(files)} sales file(s), {size / 2**20:.0f} MiB: {seconds:.3f} s "
          f"(multi-line found: {any(found)})", flush=True)
    return {"seconds": round(seconds, 3), "mib": round(size / 2**20, 1),
            "share_of_day": verdict("the CSV quote scan, share of the day", 100 * seconds / day_seconds, 5.0, "%")}


def digest_share(lake: Path, day: str, day_seconds: float) -> dict:
    """What the content digests of a day's raw files cost (every dataset's files of `day`, read cold from the page
    cache's point of view as the product reads them: once each), timed in this process, as a share of the
    product's whole day (target: at most 5%)."""
    from lakehouse.sources import files as raw_files

    y, m, d = day.split("-")
    marks = (f"date={day}/", f"year={y}/month={m}/day={d}/")
    found = [f for f in (lake / "raw").rglob("*") if f.is_file() and any(k in str(f) for k in marks)]
    raw_files._digest.cache_clear()
    start = time.perf_counter()
    for f in found:
        st = f.stat()
        raw_files.content_checksum(raw_files.RawFile(str(f), st.st_size, None, etag=raw_files.local_fingerprint(st)))
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in found)
    print(f"info  content digests of {len(found)} raw file(s) of {day}, {size / 2**20:.0f} MiB: {seconds:.3f} s",
          flush=True)
    return {"seconds": round(seconds, 3), "mib": round(size / 2**20, 1), "files": len(found),
            "share_of_day": verdict("content digests of the day's raw files, share of the day",
                                    100 * seconds / day_seconds, 5.0, "%")}


def one_dimension_row(work: Path) -> dict:
    """A week of 2,000 sales rows a day over 5,000 products (most products sold on a few dates), loaded; then the
    product sold on the fewest dates gets a new category in silver (by hand, an UPDATE with delta-rs) and the next
    `--pending` recomputes gold. Target: the gold dates it recomputes are exactly the dates whose sales reference
    that product (not every date); its time is reported beside the week's load."""
    import deltalake

    from lakehouse.sample.retail import RetailGenerator
    from lakehouse.tables.view import LakeView

    lake = work / "dimension"
    RetailGenerator(lake, days=7, rows_per_day=2000, seed=42, end_date=END, products=5000).write()
    loaded = product(lake, "--pending")
    sales = deltalake.DeltaTable(str(lake / "silver" / "sales")).to_pyarrow_table(
        columns=["product_id", "transaction_date"]).to_pylist()
    dates: dict[str, set] = {}
    for r in sales:
        dates.setdefault(r["product_id"], set()).add(r["transaction_date"])
    product_id = min(sorted(dates), key=lambda p: len(dates[p]))
    affected = sorted(dates[product_id])
    deltalake.DeltaTable(str(lake / "silver" / "products")).update(
        predicate=f"product_id = '{product_id}'", updates={"category": "'bench-relabelled'"})
    run = product(lake, "--pending")
    rows = LakeView(str(lake)).meta_rows("runs")
    last = max(r["run_id"] for r in rows)
    recomputed = sorted({d for r in rows if r["run_id"] == last and r["layer"] == "gold"
                         and r["name"] == "daily_sales_summary" for d in r["gold_dates"] or []})
    total = len({r["transaction_date"] for r in sales})
    print(f"info  one product row changed: --pending recomputed {len(recomputed)} of {total} gold date(s) "
          f"({len(affected)} reference it) in {run['seconds']:.1f} s (the week's first load: "
          f"{loaded['seconds']:.1f} s)", flush=True)
    ok = recomputed == affected and len(affected) < total
    print(f"{'PASS' if ok else 'FAIL'}  gold after one changed dimension row recomputes the dates it affects: "
          f"{len(recomputed)} recomputed, {len(affected)} affected of {total}", flush=True)
    shutil.rmtree(lake, ignore_errors=True)
    return {"seconds": run["seconds"], "week_load_seconds": loaded["seconds"],
            "recomputed": [str(d) for d in recomputed], "affected": [str(d) for d in affected],
            "dates_in_gold": total, "pass": ok}


def day_vs_peers(rows: int, work: Path, label: str) -> tuple[dict, Path, str, dict]:
    """Day 2 of `rows` sales rows (after day 1) through the product, then the Spark and pandas peers on the same
    day: timings, peak memory and the ratio against the Spark peer."""
    out: dict = {}
    lake = work / label
    generate(lake, 2, rows)
    day1, day2 = str(END - dt.timedelta(days=1)), str(END)
    out["product_day1"] = {k: v for k, v in product(lake, "--date", day1).items() if k != "output"}
    load = product(lake, "--date", day2)
    out["product_day2"] = {k: v for k, v in load.items() if k != "output"}
    out["csv_quote_scan"] = quote_scan_share(lake, day2, load["seconds"])
    out["content_digests"] = digest_share(lake, day2, load["seconds"])
    peer_args = ["--raw", str(lake / "raw"), "--date", day2]
    spark_job = [str(BIN / "spark-submit"), "--master", "local[2]", "bench/peers/sales_spark.py"]
    spark_peer = run_process([*spark_job, *peer_args, "--out", str(work / f"{label}-peer-spark")], env_for(lake))
    pandas_peer = run_process([sys.executable, "bench/peers/sales_pandas.py", *peer_args, "--out",
                               str(work / f"{label}-peer-pandas")], env_for(lake))
    # the Spark peer that also keeps bronze and silver (day 1 first, as the product), for the floor it sets
    kept = work / f"{label}-peer-kept"
    run_process([*spark_job, "--raw", str(lake / "raw"), "--date", day1, "--out", str(work / f"{label}-peer-k1"),
                 "--keep", str(kept)], env_for(lake))
    keeping_peer = run_process([*spark_job, *peer_args, "--out", str(work / f"{label}-peer-k2"),
                                "--keep", str(kept)], env_for(lake))
    # and the one that keeps every table the product keeps (all five datasets' bronze and silver, both gold tables)
    every = [*spark_job, "--every-table", "--keep", str(work / f"{label}-peer-every")]
    run_process([*every, "--raw", str(lake / "raw"), "--date", day1, "--out", str(work / f"{label}-peer-e1")],
                env_for(lake))
    every_peer = run_process([*every, *peer_args, "--out", str(work / f"{label}-peer-e2")], env_for(lake))
    out["spark_peer"] = {k: v for k, v in spark_peer.items() if k != "output"}
    out["pandas_peer"] = {k: v for k, v in pandas_peer.items() if k != "output"}
    out["keeping_spark_peer"] = {k: v for k, v in keeping_peer.items() if k != "output"}
    out["every_table_spark_peer"] = {k: v for k, v in every_peer.items() if k != "output"}
    out["day_vs_keeping_peer"] = round(load["seconds"] / keeping_peer["seconds"], 2)
    out["day_vs_every_table_peer"] = verdict(f"{rows:,}-row day vs the Spark job keeping every table the product "
                                             "keeps", load["seconds"] / every_peer["seconds"], 1.2)
    out["day_vs_spark_peer"] = verdict(f"{rows:,}-row day vs the hand-written Spark job",
                                       load["seconds"] / spark_peer["seconds"], 1.0)
    out["day_vs_pandas_peer"] = round(load["seconds"] / pandas_peer["seconds"], 2)
    print(f"info  {rows:,}-row day: product {load['seconds']:.1f} s (peak {load['peak_gb']} GB), Spark peer "
          f"{spark_peer['seconds']:.1f} s, pandas peer {pandas_peer['seconds']:.1f} s "
          f"({out['day_vs_pandas_peer']}x); the Spark peer keeping bronze and silver too "
          f"{keeping_peer['seconds']:.1f} s ({out['day_vs_keeping_peer']}x); the Spark peer keeping every table "
          f"the product keeps {every_peer['seconds']:.1f} s", flush=True)
    jars = delta_jars()
    if jars:
        out["jvm"] = day_on_the_jvm_engine(rows, work, label, jars, load, keeping_peer)
    else:
        print("info  jvm engine not measured: Delta's jars are absent (`make jars`, or LAKEHOUSE_SPARK_JARS)")
    return out, lake, day2, load


def day_on_the_jvm_engine(rows: int, work: Path, label: str, jars: str, rust_load: dict, rust_peer: dict) -> dict:
    """Day 2 (after day 1) through the product on the jvm engine, and through the Spark peer keeping bronze,
    silver and gold with delta-spark, on a lake generated the same way (same seed: the same rows)."""
    out: dict = {}
    lake = work / f"{label}-jvm"
    generate(lake, 2, rows)
    day1, day2 = str(END - dt.timedelta(days=1)), str(END)
    product(lake, "--date", day1, jars=jars)
    load = product(lake, "--date", day2, jars=jars)
    spark_job = [str(BIN / "spark-submit"), "--master", "local[2]", "--jars", jars, "bench/peers/sales_spark.py",
                 "--writer", "delta-spark", "--keep", str(work / f"{label}-peer-delta-spark")]
    run_process([*spark_job, "--raw", str(lake / "raw"), "--date", day1, "--out", str(work / f"{label}-pd1")],
                env_for(lake))
    peer = run_process([*spark_job, "--raw", str(lake / "raw"), "--date", day2, "--out", str(work / f"{label}-pd2")],
                       env_for(lake))
    every = [str(BIN / "spark-submit"), "--master", "local[2]", "--jars", jars, "bench/peers/sales_spark.py",
             "--writer", "delta-spark", "--every-table", "--keep", str(work / f"{label}-peer-delta-spark-every")]
    run_process([*every, "--raw", str(lake / "raw"), "--date", day1, "--out", str(work / f"{label}-pe1")],
                env_for(lake))
    every_peer = run_process([*every, "--raw", str(lake / "raw"), "--date", day2, "--out",
                              str(work / f"{label}-pe2")], env_for(lake))
    out["product_day2"] = {k: v for k, v in load.items() if k != "output"}
    out["keeping_delta_spark_peer"] = {k: v for k, v in peer.items() if k != "output"}
    out["every_table_delta_spark_peer"] = {k: v for k, v in every_peer.items() if k != "output"}
    out["day_vs_keeping_delta_spark_peer"] = round(load["seconds"] / peer["seconds"], 2)
    out["day_vs_every_table_delta_spark_peer"] = round(load["seconds"] / every_peer["seconds"], 2)
    print(f"info  {rows:,}-row day, jvm engine: product {load['seconds']:.1f} s (peak {load['peak_gb']} GB) vs "
          f"the Spark peer keeping bronze, silver and gold with delta-spark {peer['seconds']:.1f} s "
          f"({out['day_vs_keeping_delta_spark_peer']}x), keeping every table {every_peer['seconds']:.1f} s "
          f"({out['day_vs_every_table_delta_spark_peer']}x); rust engine: product {rust_load['seconds']:.1f} s vs the "
          f"delta-rs keeping peer {rust_peer['seconds']:.1f} s "
          f"({round(rust_load['seconds'] / rust_peer['seconds'], 2)}x)", flush=True)
    shutil.rmtree(lake, ignore_errors=True)
    return out


def driver_memory(sizes: list[int], work: Path) -> dict:
    """Day 2 (after day 1) of each size in `sizes` through the product on `local-cluster[2,1,1024]` (a master and
    two executor JVMs besides the driver): the driver's peak resident memory (its Python process and JVM, not the
    executors). Target: flat, the largest size's peak at most 1.25x the smallest's, as the executors write the rows
    and the driver handles plans, file lists and commits."""
    out: dict = {}
    conf = json.dumps({"spark.master": "local-cluster[2,1,1024]", "spark.executor.memory": "1g",
                       "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"})
    for rows in sizes:
        lake = work / f"cluster-{rows}"
        generate(lake, 2, rows)
        env = {**env_for(lake), "LAKEHOUSE_SPARK_CONF": conf}
        days = [run_process([sys.executable, "-m", "lakehouse.cli", "run", "--date", str(day)], env, driver_rss)
                for day in (END - dt.timedelta(days=1), END)]
        out[rows] = {f"day{i}": {k: v for k, v in d.items() if k != "output"} for i, d in enumerate(days, 1)}
        print(f"info  local-cluster, {rows:,}-row days: driver peak {days[0]['peak_gb']} GB (day 1), "
              f"{days[1]['peak_gb']} GB (day 2); {days[0]['seconds']:.1f} s, {days[1]['seconds']:.1f} s",
              flush=True)
        shutil.rmtree(lake, ignore_errors=True)
    low, high = out[sizes[0]], out[sizes[-1]]
    growth = max(high[d]["peak_gb"] for d in ("day1", "day2")) / max(low[d]["peak_gb"] for d in ("day1", "day2"))
    out["growth"] = verdict(f"driver peak memory on a local cluster, {sizes[-1]:,} vs {sizes[0]:,} rows a day",
                            growth, 1.25)
    return out


def bench_versus(rows: int, big_rows: int, work: Path) -> dict:
    out: dict = {}
    if rows:
        out["day"], lake, day2, load = day_vs_peers(rows, work, "versus")
        before = versions(lake)
        rerun = product(lake, "--date", day2)
        out["rerun"] = {k: v for k, v in rerun.items() if k != "output"}
        out["rerun_vs_load"] = verdict("rerun of a loaded day, nothing changed", rerun["seconds"] / load["seconds"],
                                       0.2)
        out["rerun_new_versions"] = {n: v for n, v in versions(lake).items() if v != before[n]}
        print(f"{'PASS' if not out['rerun_new_versions'] else 'FAIL'}  rerun writes no new table version: "
              f"{out['rerun_new_versions'] or 'none'}", flush=True)
        shutil.rmtree(lake, ignore_errors=True)
    week = work / "week"
    generate(week, 7, 2000)
    pending = product(week, "--pending")
    out["week_pending"] = {k: v for k, v in pending.items() if k != "output"}
    out["week_seconds"] = verdict("7 days x 2,000 rows via --pending", pending["seconds"], 20.0, " s")
    out["one_dimension_row"] = one_dimension_row(work)
    cluster = [int(n) for n in os.environ.get("VERSUS_CLUSTER_ROWS", "100000,1000000").split(",") if n.strip()]
    if len(cluster) > 1:
        out["cluster_driver_memory"] = driver_memory(cluster, work)
    if big_rows:
        out["big_day"], *_ = day_vs_peers(big_rows, work, "versus-big")
    return out


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="lakehouse-versus-"))
    try:
        report = bench_versus(int(os.environ.get("VERSUS_ROWS", 1_000_000)),
                              int(os.environ.get("VERSUS_BIG_ROWS", 5_000_000)), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
