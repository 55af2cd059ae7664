"""The arguments of the `lakehouse` command line and the spark_jobs/ scripts: every subcommand with its options
and help (the commands themselves are in `lakehouse.cli`)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import NoReturn

from lakehouse.errors import UsageError

DEFAULT_RETENTION_HOURS = 7 * 24
DESCRIPTION = ("`lakehouse` command line: run, generate, validate-config, test-specs, quality, history, read, optimize, vacuum, "
               "maintenance.")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 too; keep the message and our own exit path
        raise UsageError(f"{self.prog}: {message}")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf-dir", help="folder with datasets/ and aggregations/ (env LAKEHOUSE_CONF_DIR)")
    p.add_argument("--lake-root", help="lake root, local path or s3://bucket/prefix (env LAKEHOUSE_ROOT)")
    p.add_argument("--engine", choices=["auto", "jvm", "rust"], help="Delta engine (env LAKEHOUSE_ENGINE)")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="debug logging, and Spark's own INFO lines")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lakehouse", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and Spark's own INFO lines")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the daily job (default run date: yesterday, UTC)")
    _common(run)
    when = run.add_mutually_exclusive_group()
    when.add_argument("--date", type=_date, help="one run date")
    when.add_argument("--start", type=_date, help="first date of a backfill: through --end, or without it through "
                                                   "yesterday (UTC)")
    when.add_argument("--pending", action="store_true",
                      help="every raw partition with a file not ingested yet or changed since")
    run.add_argument("--end", type=_date, help="last date of a backfill (inclusive)")
    run.add_argument("--look-back-days", type=int, metavar="N",
                     help="with --pending: only raw partitions dated at most N days before today, UTC (the "
                          "nightly schedule uses 7)")
    run.add_argument("--reload", nargs="*", metavar="DATASET",
                     help="with --date or --start/--end: take the dates' raw files again (every dataset, or the ones "
                          "named), judged by content alone and with rejected files retried; what did not change "
                          "writes no new table version, what did lands")
    run.add_argument("--full-refresh", action="store_true",
                     help="rebuild silver and gold from bronze for the dates given (or everything); raw files "
                          "are not read and bronze is not touched")

    plan = sub.add_parser("plan", help="show what a run would read and write, writing nothing")
    _common(plan)
    plan_when = plan.add_mutually_exclusive_group()
    plan_when.add_argument("--date", type=_date)
    plan_when.add_argument("--pending", action="store_true")
    plan.add_argument("--look-back-days", type=int, metavar="N", help="with --pending: as for run")
    plan.add_argument("--gold-dates", action="store_true",
                      help="also the gold dates each day's rows hold (starts Spark; the listing alone needs no JVM)")

    gen = sub.add_parser("generate", help="write deterministic retail sample data into <lake>/raw")
    gen.add_argument("--lake-root")
    gen.add_argument("--days", type=int, default=7)
    gen.add_argument("--rows-per-day", type=int, default=2000)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--end-date", type=_date, help="last day to generate (default: yesterday, UTC)")
    gen.add_argument("--if-empty", action="store_true", help="do nothing when the raw zone has files")
    gen.add_argument("--force", action="store_true", help="overwrite the raw files of dates that have some")

    land = sub.add_parser("land", help="upload a local raw zone to s3://bucket/prefix, keeping its layout "
                                       "(files already there unchanged are skipped)")
    land.add_argument("--from", dest="source", required=True, help="local folder, e.g. lake/raw")
    land.add_argument("--to", dest="target", required=True, help="s3://bucket/prefix, e.g. s3://my-lake/raw")

    val = sub.add_parser("validate-config", help="check every spec under the conf folder, resolving every column "
                                                 "reference and SQL fragment (starts a local Spark)")
    val.add_argument("--conf-dir")
    val.add_argument("--no-spark", action="store_true",
                     help="structure, names and types only: no Spark, SQL fragments not resolved")

    spec_tests = sub.add_parser("test-specs", help="run the rule tests (`tests:`) of the dataset specs on a local "
                                                   "Spark, without a lake; exit 1 when one fails, with what differs")
    spec_tests.add_argument("--conf-dir")
    spec_tests.add_argument("--dataset", action="append", default=[], help="only this dataset's tests (repeatable)")

    quality = sub.add_parser("quality", help="the quality metrics of a run date: level, rows, failures, observed value, threshold (no JVM)")
    _common(quality)
    quality.add_argument("--date", type=_date, help="run date (default: the latest in _meta/quality)")

    history = sub.add_parser("history", help="a table's Delta history: version, UTC time, operation, rows (no JVM)")
    _common(history)
    history.add_argument("table", help="e.g. silver/sales, gold/daily_sales_summary, _meta/runs")
    history.add_argument("--limit", type=int, default=20)

    read = sub.add_parser("read", help="rows of a table, optionally as of an older version (no JVM)")
    _common(read)
    read.add_argument("table", help="e.g. gold/daily_sales_summary")
    read.add_argument("--as-of-version", type=int, help="Delta version to read (time travel)")
    read.add_argument("--limit", type=int, default=20)
    read.add_argument("--where", action="append", default=[], metavar="CONDITION",
                      help="keep rows where COLUMN=VALUE, COLUMN!=VALUE or COLUMN~TEXT (contains); repeatable")
    read.add_argument("--columns", help="comma-separated columns to show (default: all)")

    runs = sub.add_parser("runs", help="the latest runs (no JVM); `runs show RUN_ID` for one run in full")
    _common(runs)
    runs.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    runs.add_argument("run_id", nargs="?", help="with show: the run id (first column of `lakehouse runs`)")
    runs.add_argument("--last", type=int, default=20, help="how many runs to list (default 20)")

    restore = sub.add_parser("restore", help="roll a table back to an older version (a new commit)")
    _common(restore)
    restore.add_argument("table", help="e.g. gold/daily_sales_summary")
    restore.add_argument("--to-version", type=int, required=True)

    for name, text in (("optimize", "compact small files of every table (or the ones named)"),
                       ("vacuum", "delete files no table version within the retention needs"),
                       ("maintenance", "optimize, then vacuum, every table (the weekly job)")):
        p = sub.add_parser(name, help=text)
        _common(p)
        if name != "maintenance":
            p.add_argument("tables", nargs="*", help="e.g. silver/sales (default: all tables of conf/)")
        if name != "optimize":
            p.add_argument("--retention-hours", type=int, default=DEFAULT_RETENTION_HOURS,
                           help=f"keep files needed by versions of the last N hours (default "
                                f"{DEFAULT_RETENTION_HOURS}, i.e. 7 days; less needs --force)")
            p.add_argument("--force", action="store_true", help="allow a retention below 7 days")
            p.add_argument("--dry-run", action="store_true", help="list the files, delete nothing")
    return parser
