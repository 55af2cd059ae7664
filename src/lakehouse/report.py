"""Everything the command line prints, formatted in one place (the golden-output tests pin this text).

Tables are aligned for any name length: each column is as wide as its widest cell.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from lakehouse.api import MaintenanceResult
from lakehouse.pipeline.job import DayResult
from lakehouse.specs import Catalog
from lakehouse.tables.engine import HistoryEntry

RUN_LEGEND = ("read: rows in the raw files; quar.: rows quarantined (an error-level check failed); dupl.: rows "
              "superseded by a later row with the same key; held: valid rows held back because the dataset "
              "failed; silver: rows merged (ins new, upd changed, same already there)")


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
        rows.append([o.dataset, o.status, o.rows_read, o.rows_quarantined, o.rows_duplicate, o.rows_held_back,
                     o.rows_to_silver, m.inserted if m else 0, m.updated if m else 0, m.unchanged if m else 0,
                     o.message if o.message and o.status != "ok" else ""])
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
        rows.append([e.version, e.timestamp.isoformat(sep=" ", timespec="seconds") + "Z", e.operation, shown])
    return "\n".join([path, *table(["version", "time", "operation", "metrics"], rows, right=[True])])


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


def validated(conf_dir: str, catalog: Catalog) -> str:
    return (f"{conf_dir}: {len(catalog.datasets)} datasets ({', '.join(s.name for s in catalog.dataset_order())}), "
            f"{len(catalog.aggregations)} aggregations ({', '.join(sorted(catalog.aggregations))}): ok")


def config_error(exc: BaseException) -> str:
    return f"configuration error:\n{exc}"
