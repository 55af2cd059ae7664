"""`lakehouse` command line: run, generate, validate-config, test-specs, quality, history, read, optimize, vacuum, maintenance.

Exit codes: 0 success, 1 run failed (processing error or an error-level dataset check), 2 configuration or
usage error, or a table or version that does not exist (the classes of `lakehouse.errors` carry their code).
The commands hold no Spark queries and no table lists: they call `lakehouse.api` and print with
`lakehouse.report`. Every path out of `main` returns one of them, so spark-submit and the Spark Operator see a
failure as a failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Sequence

from lakehouse import report
from lakehouse.api import Lakehouse, check_secrets, date_range, default_run_date
from lakehouse.arguments import DEFAULT_RETENTION_HOURS, build_parser
from lakehouse.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ConfigError,
    LakehouseError,
    TableError,
    UsageError,
    describe,
    environment_cause,
    exit_code,
)
from lakehouse.redaction import redact
from lakehouse.settings import Settings
from lakehouse.storage import check_bucket, is_remote
from lakehouse.telemetry import logs

log = logging.getLogger("lakehouse")
console = logging.getLogger("lakehouse.console")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env().with_overrides(
        conf_dir=getattr(args, "conf_dir", None), lake_root=getattr(args, "lake_root", None),
        engine=getattr(args, "engine", None))


def _say(text: str) -> None:
    """A line for the operator: printed, or in JSON-lines mode a log record (stdout holds JSON only)."""
    if logs.json_mode():
        console.info(text)
    else:
        print(text, flush=True)


def _progress(line: str) -> None:
    _say(f"  {line}")


def _lake(args: argparse.Namespace, app_name: str) -> Lakehouse:
    settings = _settings(args)
    if is_remote(settings.lake_root):
        check_bucket(settings.lake_root)
    return Lakehouse(settings, app_name=app_name, progress=_progress)


def _run_dates(args: argparse.Namespace) -> list[dt.date]:
    if args.end and not args.start:
        raise UsageError("--end needs --start")
    if args.start:
        if not args.end and args.start > default_run_date():
            raise UsageError(f"--start {args.start} without --end runs through yesterday ({default_run_date()}); "
                             "give --end for later dates")
        try:  # --start alone runs through yesterday (UTC), the default run date
            return date_range(args.start, args.end or default_run_date())
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    return [args.date or default_run_date()]


def cmd_run(args: argparse.Namespace) -> int:
    if args.pending and args.full_refresh:
        raise UsageError("--pending and --full-refresh do not combine")
    if args.reload is not None and (args.pending or args.full_refresh or not (args.date or args.start)):
        raise UsageError("--reload takes the dates to read again: --date D, or --start D1 --end D2")
    _check_look_back(args)
    lake = _lake(args, "lakehouse-daily")
    explicit = bool(args.date or args.start)
    dates = None if args.pending or (args.full_refresh and not explicit) else _run_dates(args)
    lake.validate(resolve=False)  # before Spark starts: a bad spec costs no JVM
    check_secrets(lake.catalog)
    if not args.full_refresh:
        _check_raw(lake)
    mode = "pending" if args.pending else ("full refresh " if args.full_refresh else "") + (
        f"{dates[0]}..{dates[-1]}" if dates else "everything")
    started = time.perf_counter()
    if args.pending and lake.can_answer_without_spark() and lake.nothing_pending(args.look_back_days):
        _say("nothing pending: every raw file is ingested and unchanged")  # no JVM started to find out
        return EXIT_OK
    _say(f"engine={lake.engine.name} lake={lake.settings.lake_root} run={mode}")
    if args.pending:
        results = lake.run_pending(args.look_back_days)
    elif args.full_refresh:
        results = lake.full_refresh(dates)
    else:
        results = lake.run(dates or [], reload=args.reload)
    if args.pending and not any(r.datasets or r.golds for r in results):
        _say("\n".join(["nothing pending: every raw file is ingested and unchanged",
                         *[f"  note: {n}" for r in results for n in r.notes]]))
        return EXIT_OK
    for result in results:
        _say(report.run_summary(result))
    if results:
        _say(report.runs_footer(results, time.perf_counter() - started))
    if any(r.failed for r in results):
        _error(report.run_failure(results))
        return EXIT_FAILED
    return EXIT_OK


def _check_raw(lake: Lakehouse) -> None:
    """No dataset with a raw file under the lake root: an error naming the root (a wrong LAKEHOUSE_ROOT or
    --lake-root would otherwise read as 'nothing pending'); some datasets without any: a note naming them."""
    empty = lake.empty_raw_folders()
    if empty and len(empty) == len(lake.catalog.datasets):
        exists = [f for f in empty.values() if "://" not in f and os.path.isdir(f)]
        if not exists:
            raise UsageError(f"no raw data under the lake root {lake.settings.lake_root}: no raw folder of any "
                             f"dataset exists ({', '.join(empty.values())}); check LAKEHOUSE_ROOT or --lake-root "
                             "(`lakehouse generate` writes a sample)")
    for name, folder in empty.items():
        _say(f"note: no raw file for dataset {name} in {folder}")


def _check_look_back(args: argparse.Namespace) -> None:
    if args.look_back_days is not None and (not args.pending or args.look_back_days < 0):
        raise UsageError("--look-back-days takes a number of days >= 0, with --pending")


def cmd_plan(args: argparse.Namespace) -> int:
    _check_look_back(args)
    lake = _lake(args, "lakehouse-plan")
    lake.validate(resolve=False)
    _check_raw(lake)
    print(report.plan_text(lake.plan(args.date, pending=args.pending, gold_dates=args.gold_dates,
                                     look_back_days=args.look_back_days)))
    return EXIT_OK


def cmd_land(args: argparse.Namespace) -> int:
    from lakehouse.landing import land

    if is_remote(args.target) and os.path.isdir(args.source):  # a missing source folder is land's own error
        check_bucket(args.target)
    result = land(args.source, args.target, tell=_progress)
    print(report.landed(result, args.target))
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from lakehouse.sample.retail import RetailGenerator, raw_zone_empty

    if args.days < 1 or args.rows_per_day < 1:
        raise UsageError("generate needs --days and --rows-per-day of at least 1")
    root = args.lake_root or Settings.from_env().lake_root
    if "://" in root:
        raise UsageError("generate writes to a local lake root only")
    if args.if_empty and not raw_zone_empty(root):
        print(f"raw zone {root}/raw already has files; not generating")
        return EXIT_OK
    gen = RetailGenerator(root, days=args.days, rows_per_day=args.rows_per_day, seed=args.seed,
                          end_date=args.end_date)
    occupied = gen.occupied_days()
    if occupied and not args.force:
        shown = ", ".join(str(d) for d in occupied[:5]) + (f" (and {len(occupied) - 5} more)" if len(occupied) > 5 else "")
        raise UsageError(f"raw files exist already for {shown} under {root}/raw: generate would overwrite them; "
                         "add --force to do it, or choose other dates with --end-date")
    result = gen.write()
    print(f"generated {len(result.files)} files for {result.days[0]}..{result.days[-1]} under {root}/raw: "
          + ", ".join(f"{k}={v}" for k, v in sorted(result.rows.items())))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    lake = Lakehouse(settings, app_name="lakehouse-validate", spark_conf={"spark.ui.enabled": "false"})
    lake.validate(resolve=False)  # structure first: no JVM for a spec that does not load
    if not args.no_spark:
        lake.validate()
    print(report.validated(settings.conf_dir, lake.catalog))
    return EXIT_OK


def cmd_test_specs(args: argparse.Namespace) -> int:
    settings = _settings(args)
    lake = Lakehouse(settings, app_name="lakehouse-test-specs", spark_conf={"spark.ui.enabled": "false"})
    lake.validate(resolve=False)  # structure first: no JVM for a spec that does not load
    results = lake.test_specs(args.dataset)
    print(report.spec_tests_report(settings.conf_dir, results))
    return EXIT_FAILED if any(not r.passed for r in results) else EXIT_OK


def cmd_quality(args: argparse.Namespace) -> int:
    lake = _lake(args, "lakehouse-quality")
    run_id, run_date, rows = lake.quality(args.date)
    if run_id is None and args.date is not None:
        dates = sorted({r["run_date"] for r in lake.view.meta_rows("quality")})
        listed = ", ".join(str(d) for d in dates[-10:]) if dates else "none yet"
        raise UsageError(f"no quality metrics for run date {args.date} in {lake.path('_meta/quality')}; run dates "
                         f"with metrics: {listed}{' (the last 10)' if len(dates) > 10 else ''}")
    print(report.quality_report(run_id, run_date, rows))
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    lake = _lake(args, "lakehouse-history")
    print(report.history_report(lake.path(args.table), lake.history(args.table, args.limit)))
    return EXIT_OK


def cmd_read(args: argparse.Namespace) -> int:
    lake = _lake(args, "lakehouse-read")
    columns = tuple(c.strip() for c in (args.columns or "").split(",") if c.strip())
    rows = lake.view.read(args.table, args.as_of_version, limit=args.limit, conditions=tuple(args.where),
                          columns=columns)
    print(report.rows_report(lake.path(args.table), rows, args.as_of_version))
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    lake = _lake(args, "lakehouse-runs")
    if args.action == "show":
        if not args.run_id:
            raise UsageError("runs show needs a RUN_ID (see `lakehouse runs`)")
        detail = lake.run_detail(args.run_id)
        if detail is None:
            print(f"error: no run {args.run_id} in {lake.path('_meta/runs')}", file=sys.stderr)
            return EXIT_USAGE
        print(report.run_report(detail))
    else:
        print(report.runs_report(lake.runs(args.last)))
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    lake = _lake(args, "lakehouse-restore")
    new = lake.restore(args.table, args.to_version)
    print(f"{lake.path(args.table)}: restored version {args.to_version} as version {new}")
    return EXIT_OK


def _check_retention(args: argparse.Namespace) -> None:
    if args.retention_hours < DEFAULT_RETENTION_HOURS and not args.force:
        raise UsageError(f"--retention-hours {args.retention_hours} is below the {DEFAULT_RETENTION_HOURS}-hour "
                         "default: readers and time travel within that window could break; add --force to do it")
    if args.retention_hours < 0:
        raise UsageError("--retention-hours must not be negative")


def _maintain(args: argparse.Namespace, optimize: bool, vacuum: bool) -> int:
    if vacuum:
        _check_retention(args)
    lake = _lake(args, "lakehouse-maintenance")
    results = lake.maintain(getattr(args, "tables", []), optimize=optimize,
                            vacuum_retention_hours=args.retention_hours if vacuum else None,
                            dry_run=bool(getattr(args, "dry_run", False)))
    for r in results:
        print(report.maintenance_line(r), flush=True)
        if r.error:
            log.error("maintenance of %s failed: %s", r.path, r.error)
    return EXIT_FAILED if any(r.error for r in results) else EXIT_OK


def cmd_optimize(args: argparse.Namespace) -> int:
    return _maintain(args, optimize=True, vacuum=False)


def cmd_vacuum(args: argparse.Namespace) -> int:
    return _maintain(args, optimize=False, vacuum=True)


def cmd_maintenance(args: argparse.Namespace) -> int:
    return _maintain(args, optimize=True, vacuum=True)


COMMANDS = {"run": cmd_run, "plan": cmd_plan, "generate": cmd_generate, "land": cmd_land,
            "validate-config": cmd_validate, "test-specs": cmd_test_specs,
            "quality": cmd_quality, "history": cmd_history, "read": cmd_read, "runs": cmd_runs, "restore": cmd_restore, "optimize": cmd_optimize,
            "vacuum": cmd_vacuum, "maintenance": cmd_maintenance}


def main(argv: Sequence[str] | None = None) -> int:
    # the same shape as Spark's own lines (conf/spark/log4j2.properties): time, level, logger: message
    # Spark-like text lines, or JSON lines with LAKEHOUSE_LOG_FORMAT=json; no AWS secret in any line
    logs.configure()
    try:
        args = build_parser().parse_args(argv)
        if args.verbose:
            logs.configure(verbose=True)
            os.environ["LAKEHOUSE_VERBOSE"] = "1"
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        _error(report.config_error(exc))
        return exc.exit_code
    except TableError as exc:
        _error(f"error: {exc}")
        return exc.exit_code
    except LakehouseError as exc:  # the product's own failures say what happened in one line (detail: -v)
        log.debug("the command failed", exc_info=True)
        _error(f"error: {exc}")
        return exc.exit_code
    except Exception as exc:
        # anything else: one line on the console (the cause, from the environment where it is one); the stack
        # goes to the debug log (-v)
        log.debug("the command failed", exc_info=True)
        cause, text = environment_cause(exc), describe(exc)
        if cause:
            _error(f"error: {text}" if text.startswith(cause) else f"error: {cause}: {text}")
        else:
            _error(f"error: the command failed: {text} (-v shows where)")
        return exit_code(exc)
    except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException, not an Exception
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        log.debug("the command failed", exc_info=True)
        _error(f"error: a library panicked: {describe(exc)} (-v shows where)")
        return EXIT_FAILED


def _error(text: str) -> None:
    """A configuration or table error: one line of text on stderr, or a JSON record in JSON-lines mode."""
    if logs.json_mode():
        log.error(text)
    else:
        print(redact(text), file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> int:
    """The `lakehouse` command: `main` with its console guarded (Java stacks and Rust panic reports go to a
    detail file, telemetry/console.py)."""
    from lakehouse.telemetry.console import StderrGuard

    given = list(sys.argv[1:] if argv is None else argv)
    with StderrGuard(verbose="-v" in given or "--verbose" in given or None):
        return main(argv)


def entry(argv: Sequence[str] | None = None, prefix: Sequence[str] = ()) -> None:
    """For the spark_jobs/ scripts: run and exit with the code, stopping Spark first."""
    leave(run([*prefix, *(sys.argv[1:] if argv is None else argv)]))


def command() -> None:
    """The `lakehouse` console script."""
    leave(run())


def leave(code: int) -> None:
    """Stop Spark (when started) and exit with `code`. After delta-rs has used object storage its runtime can
    abort the interpreter while it shuts down (exit 134 once the work is done); then the process ends here, its
    output flushed, without the interpreter's shutdown."""
    from lakehouse import storage

    try:
        if "pyspark" in sys.modules:
            from pyspark.sql import SparkSession

            active = SparkSession.getActiveSession()
            if active is not None:
                active.stop()
    except Exception:  # a JVM already gone: nothing to stop
        log.debug("stopping Spark failed", exc_info=True)
    if storage.DELTA_RS_REMOTE:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    leave(run())
