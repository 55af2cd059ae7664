"""Everything the command line prints, formatted in one place (the golden-output tests pin this text).

Tables are aligned for any name length: each column is as wide as its widest cell.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from lakehouse.api import MaintenanceResult, RunDetail, RunSummary
from lakehouse.landing import LandResult
from lakehouse.pipeline.plan import DatasetPlan, GoldRecompute, Plan
from lakehouse.pipeline.spec_tests import CaseResult
from lakehouse.results import DayResult
from lakehouse.specs import Catalog
from lakehouse.tables.engine import HistoryEntry

RUN_LEGEND = ("read: rows in the raw files; quar.: rows quarantined (an error-level check failed); dupl.: rows "
              "superseded by a later row with the same key; held: valid rows held back because the dataset "
              "failed; silver: rows merged (ins new, upd changed, same already there; ·: merged in one MERGE with "
              "the last run date of its batch, where the counts are)")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[bool] = (),
          indent: str = "  ") -> list[str]:
    """Rows under a header, each column as wide as its widest cell; `right[i]` right-aligns column i."""
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [(c.rjust(w) if i < len(right) and right[i] else c.ljust(w)) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]
        lines.append((indent + "  ".join(parts)).rstrip())
    return lines


def run_summary(result: DayResult) -> str:
    """A run date's outcome: one row per dataset and gold table, then rejected and skipped files and notes."""
    lines = [f"run {result.run_id} for {result.run_date}: {'FAILED' if result.failed else 'ok'}"]
    rows = []
    for o in result.datasets:
        m = o.merge
        # a day merged with later days of its batch: the one MERGE is counted on the batch's last day
        merged: list[Any] = [m.inserted, m.updated, m.unchanged] if m else (
            ["·"] * 3 if o.rows_to_silver else [0, 0, 0])
        rows.append([o.dataset, o.status, o.rows_read, o.rows_quarantined, o.rows_duplicate, o.rows_held_back,
                     o.rows_to_silver, *merged, o.message if o.message and o.status != "ok" else ""])
    lines += table(["dataset", "status", "read", "quar.", "dupl.", "held", "silver", "ins", "upd", "same", ""],
                   rows, right=[False, False] + [True] * 8)
    if result.golds:
        gold_rows = []
        for g in result.golds:
            m = g.merge
            gold_rows.append([g.table, g.status, len(g.dates), g.rows, m.inserted if m else 0, m.updated if m else 0,
                              m.deleted if m else 0, g.message if g.status == "failed" else ""])
        lines += table(["gold table", "status", "dates", "rows", "ins", "upd", "del", ""], gold_rows,
                       right=[False, False] + [True] * 5)
    for o in result.datasets:
        lines += [f"  rejected file: {o.dataset} {r.file.path}: {r.reason}" for r in o.rejected]
        lines += [f"  skipped (not a data file): {o.dataset} {path}" for path in o.skipped]
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines)


def runs_footer(results: Sequence[DayResult], seconds: float) -> str:
    """Totals of a run over several dates, the elapsed time and the legend of the columns."""
    datasets = [o for r in results for o in r.datasets]
    failed = sum(1 for r in results if r.failed)
    total = (f"{len(results)} run date(s), {failed} failed; rows read {sum(o.rows_read for o in datasets)}, "
             f"quarantined {sum(o.rows_quarantined for o in datasets)}, "
             f"to silver {sum(o.rows_to_silver for o in datasets)}; {seconds:.1f} s")
    return f"{total}\n{RUN_LEGEND}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def quality_report(run_id: str | None, run_date: dt.date | None, rows: list[dict[str, Any]]) -> str:
    """The quality metrics of a run: every check with its level, rows, failures, observed value and threshold."""
    if run_id is None:
        return "no quality metrics yet"
    lines = [f"quality of run {run_id} (run date {run_date})"]
    lines += table(["dataset", "check", "column", "level", "rows", "failed", "observed", "threshold", "status"],
                   [[r["dataset"], r["check"], r["column"], r["criticality"], r["evaluated_rows"], r["failed_rows"],
                     _number(r["observed"]), r["threshold"], r["status"]] for r in rows],
                   right=[False, False, False, False, True, True, True])
    return "\n".join(lines)


def history_report(path: str, entries: list[HistoryEntry]) -> str:
    """A table's commits, newest first: version, time (UTC), operation and its main metrics."""
    keys = ("num_added_rows", "numOutputRows", "num_target_rows_inserted", "numTargetRowsInserted",
            "num_target_rows_updated", "numTargetRowsUpdated", "num_deleted_rows", "numDeletedRows",
            "num_target_rows_deleted", "numTargetRowsDeleted")
    rows = []
    for e in entries:
        shown = ", ".join(f"{k}={e.metrics[k]}" for k in keys if k in e.metrics)
        rows.append([e.version, _stamp(e.timestamp), e.operation, e.tag or "-", shown])
    return "\n".join([path, *table(["version", "time", "operation", "run id", "metrics"], rows, right=[True])])


def _cell(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def rows_report(path: str, rows: pa.Table, version: int | None) -> str:
    """A table's rows as aligned text, every column."""
    header = f"{path}" + (f" as of version {version}" if version is not None else "") + f": {rows.num_rows} row(s)"
    data = [[_cell(v) for v in row.values()] for row in rows.to_pylist()]
    return "\n".join([header, *table(rows.column_names, data)])


def _stamp(moment: dt.datetime) -> str:
    """An instant as UTC text (naive values are UTC already)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ", timespec="seconds") + "Z"


def runs_report(runs: Sequence[RunSummary]) -> str:
    """The latest runs, oldest first: id, run date, status, rows, duration."""
    if not runs:
        return "no runs yet"
    return "\n".join(table(
        ["run id", "run date", "status", "started (UTC)", "seconds", "read", "quar.", "silver", "failed"],
        [[r.run_id, r.run_date, r.status, _stamp(r.started_at), f"{r.seconds:.1f}", r.rows_read, r.rows_quarantined,
          r.rows_to_silver, ", ".join(r.failed)] for r in runs],
        right=[False, False, False, False, True, True, True, True], indent=""))


def run_report(detail: RunDetail) -> str:
    """One run: per dataset and gold table its counts, then rejected files and quality results."""
    s = detail.summary
    lines = [f"run {s.run_id} for {s.run_date}: {s.status} (engine {s.engine}, {_stamp(s.started_at)}, "
             f"{s.seconds:.1f} s)"]
    lines += table(["layer", "name", "status", "files", "read", "quar.", "dupl.", "held", "silver", "ins", "upd",
                    "del", "version", "message"],
                   [[t["layer"], t["name"], t["status"], t["files"], t["rows_read"], t["rows_quarantined"],
                     t["rows_duplicate"], t["rows_held_back"], t["rows_to_silver"], t["rows_inserted"],
                     t["rows_updated"], t["rows_deleted"], t["table_version"], t["message"] or ""]
                    for t in detail.tables], right=[False, False, False] + [True] * 10)
    lines += [f"  rejected file: {r['dataset']} {r['path']}: {r['reason']}" for r in detail.rejected]
    if detail.quality:
        lines.append(quality_report(s.run_id, s.run_date, detail.quality))
    return "\n".join(lines)


def maintenance_line(r: MaintenanceResult) -> str:
    if r.note:
        return f"{r.path}: {r.note}"
    if r.skipped:
        return f"{r.path}: {r.skipped}, skipped"
    if r.error:
        return f"{r.path}: FAILED {r.error}"
    parts = []
    if r.optimized is not None:
        parts.append(f"optimized: {r.optimized.files_removed} file(s) compacted into {r.optimized.files_added}")
    if r.vacuumed is not None:
        verb = "would delete" if r.vacuumed.dry_run else "deleted"
        parts.append(f"vacuum {verb} {r.vacuumed.count} file(s)")
    return f"{r.path}: " + "; ".join(parts)


def _dataset_plan_lines(d: DatasetPlan) -> list[str]:
    day = d.day
    size = sum(f.size for f in day.files)
    lines = [f"  {d.dataset}: {len(day.files)} file(s), {size:,} bytes from {day.folder}"]
    for f in day.files:
        mark = "" if d.changed is None else ("  (new or changed)" if f.path in d.changed else "  (unchanged)")
        lines.append(f"    read {f.path}{mark}")
    lines += [f"    skip {path} (not a data file)" for path in day.skipped]
    if not day.files:
        return lines
    lines.append(f"    replace partition _partition_date={day.date} of {d.bronze} and {d.quarantine}")
    lines.append(f"    merge into {d.silver} by {d.keys}")
    for table, dates in d.gold.items():
        if dates is None:
            lines.append(f"    recompute {table} for the dates whose silver rows change (--gold-dates lists them)")
            continue
        shown = ", ".join(str(x) for x in dates) or "none"
        lines.append(f"    recompute {table} for those of these {len(dates)} date(s) whose silver rows "
                     f"change: {shown}")
    return lines


def _gold_line(g: GoldRecompute) -> str:
    if g.dates is None:
        return f"  recompute {g.table} for every date: {g.why}"
    if not g.known:
        return f"  recompute {g.table} for the dates the change touches (--gold-dates lists them): {g.why}"
    shown = ", ".join(str(d) for d in g.dates) or "none"
    return f"  recompute {g.table} for {len(g.dates)} date(s): {shown}: {g.why}"


def plan_text(plan: Plan) -> str:
    """What a run would read and write, dataset by dataset."""
    what = f"run date {plan.run_date}" if plan.run_date else "--pending"
    lines = [f"plan for {what} (engine {plan.engine}, lake {plan.lake}); nothing is written"]
    if plan.run_date is None and not plan.days and not plan.gold:
        lines.append("  nothing pending: every raw file is ingested and unchanged")
    lines += [_gold_line(g) for g in plan.gold]
    for day, datasets in plan.days:
        if plan.run_date is None:
            lines.append(f" run date {day}:")
        for d in datasets:
            lines += _dataset_plan_lines(d)
    lines += [f"  deleted upstream (would be reported, rows kept): {r['dataset']} {r['path']}" for r in plan.deleted]
    lines += [f"  invalid partition folder, not read ({why}): {dataset} {folder}"
              for dataset, folders in sorted(plan.invalid.items()) for folder, why in folders.items()]
    return "\n".join(lines)


def validated(conf_dir: str, catalog: Catalog) -> str:
    return (f"{conf_dir}: {len(catalog.datasets)} datasets ({', '.join(s.name for s in catalog.dataset_order())}), "
            f"{len(catalog.aggregations)} aggregations ({', '.join(sorted(catalog.aggregations))}): ok")


def spec_tests_report(conf_dir: str, results: list[CaseResult]) -> str:
    """One line per rule test (ok / FAILED, where it is written), what differs under a failed one, and a total."""
    if not results:
        return f"{conf_dir}: no rule tests (`tests:` in a dataset spec)"
    lines = []
    for r in results:
        lines.append(f"{'ok    ' if r.passed else 'FAILED'} {r.dataset}: {r.case}  ({r.source})")
        lines += [f"    {line}" for problem in r.problems for line in problem.splitlines()]
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results)} rule test(s): {len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def config_error(exc: BaseException) -> str:
    """A spec's problems as `file:line: field: message` lines, which editors and CI annotators jump to (one or
    many); any other configuration error as one `error: ...` line."""
    problems = getattr(exc, "problems", None)
    if problems:
        return "\n".join(problems)
    text = str(exc)
    return f"error: {text}" if "\n" not in text else f"configuration error:\n{text}"


def landed(r: LandResult, target: str) -> str:
    return (f"landed {len(r.uploaded)} file(s), {r.bytes_uploaded / 2**20:.1f} MiB, to {target}; "
            f"{len(r.skipped)} already there unchanged; {r.seconds:.1f} s")


def run_failure(results: list[Any]) -> str:
    """The one `error:` line of a run that failed: the first failure (dataset or gold table, its run dates, the
    cause), and how many others failed; the table above has each."""
    failures: dict[tuple[str, str], list[Any]] = {}
    for r in results:
        for o in [*r.datasets, *r.golds]:
            if o.status == "failed":
                name = str(getattr(o, "dataset", None) or getattr(o, "name", "?"))
                failures.setdefault((name, o.message), []).append(r.run_date)
    (name, message), dates = next(iter(failures.items()))
    span = str(dates[0]) if len(dates) == 1 else f"{min(dates)}..{max(dates)}"
    more = len({n for n, _ in failures} - {name})
    tail = f"; {more} other dataset(s) or gold table(s) failed too" if more else ""
    return f"error: {name} failed for {span}: {message}{tail}"
