"""Rule tests (`tests:` in a dataset spec): each case's rows go through the stages a day's rows go through
(typed cast, cleaning, row checks, one row per key), on the Spark session at hand and without a lake; what
reaches silver and what is quarantined, with its reasons, is compared with what the case expects. A failing case
says what differs, row by row."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.pipeline.silver import one_per_key, valid_rows
from lakehouse.rules.checks import ERRORS, evaluate
from lakehouse.rules.cleaning import clean
from lakehouse.rules.conform import conform
from lakehouse.specs import Catalog
from lakehouse.specs.cases import RuleTest
from lakehouse.specs.models import DatasetSpec
from lakehouse.sql import column

ROW = "_test_row"  # the input row's number (from 1), carried through the stages


@dataclass
class CaseResult:
    dataset: str
    case: str
    source: str  # where the case is written: file:line
    problems: list[str] = field(default_factory=list)  # what differs, one text per stage; empty: it passed

    @property
    def passed(self) -> bool:
        return not self.problems


def _text(value: Any) -> str | None:
    """A YAML value as the text a raw file would hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _frame(spark: SparkSession, rows: list[dict[str, Any]], numbered: bool = False) -> DataFrame:
    """`rows` as text columns (and, `numbered`, each row's number from 1 in ROW)."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    fields = [T.StructField(n, T.StringType()) for n in names]
    fields += [T.StructField(ROW, T.LongType())] if numbered else []
    return spark.createDataFrame([tuple(_text(r.get(n)) for n in names) + ((i + 1,) if numbered else ())
                                  for i, r in enumerate(rows)], T.StructType(fields))


def _references(spark: SparkSession, catalog: Catalog, case: RuleTest) -> dict[str, DataFrame | None]:
    """The case's silver rows of referenced datasets, typed as those datasets declare their columns."""
    out: dict[str, DataFrame | None] = {}
    for name, rows in case.references.items():
        frame = _frame(spark, rows) if rows else None
        ref = catalog.datasets.get(name)
        if frame is not None and ref is not None:
            types = {f.name: f.dataType for f in ref.source_schema().fields}
            frame = frame.withColumns({c: column(c).cast(types[c]) for c in frame.columns if c in types})
        out[name] = frame
    return out


def same(expected: Any, got: Any) -> bool:
    """Whether a value written in YAML is the value Spark holds: numbers by value, dates and times by their ISO
    text, the rest by text."""
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(got, bool) or isinstance(expected, bool):
        return _text(expected) == _text(got)
    if isinstance(got, int | float | decimal.Decimal):
        try:
            return abs(decimal.Decimal(str(expected)) - decimal.Decimal(str(got))) <= decimal.Decimal("1e-9")
        except decimal.InvalidOperation:
            return False
    if isinstance(got, dt.datetime):
        wanted = expected if isinstance(expected, dt.datetime) else _parse_time(str(expected))
        return wanted is not None and wanted.replace(tzinfo=None) == got.replace(tzinfo=None)
    if isinstance(got, dt.date):
        return str(expected) == got.isoformat()
    return _text(expected) == _text(got)


def _parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _show(row: dict[str, Any], columns: list[str]) -> str:
    return "{" + ", ".join(f"{c}: {_shown(row.get(c))}" for c in columns) + "}"


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _silver_diff(expected: list[dict[str, Any]], got: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """Expected silver rows against the rows found (each compared on the expected row's columns), paired by key
    where the expected rows give the keys, else in order; empty when they agree."""
    columns = list(dict.fromkeys(c for r in expected for c in r))
    unknown = [c for c in columns if got and c not in got[0]]
    if unknown:
        return [f"silver has no column {unknown[0]!r} (its columns: {', '.join(got[0])})"]
    by_key = all(k in r for r in expected for k in keys)
    remaining = list(got)
    lines, ok = [], True
    for want in expected:
        match = next((g for g in remaining if all(same(want[k], g.get(k)) for k in (keys if by_key else want))),
                     None)
        if match is None and not by_key:
            match = remaining[0] if remaining else None
        if match is not None:
            remaining.remove(match)
        equal = match is not None and all(same(want[c], match.get(c)) for c in want)
        ok = ok and equal
        found = _show(match, list(want)) if match is not None else "(no such row)"
        lines.append(f"  {'=' if equal else '≠'} expected {_show(want, list(want))}\n"
                     f"    {' ' if equal else '!'} got      {found}")
    for extra in remaining:
        ok = False
        lines.append(f"  + unexpected {_show(extra, columns)}")
    return [] if ok else ["\n".join(["silver rows differ (= same, ≠ different, + not expected):", *lines])]


def _quarantine_diff(expected: dict[int, list[str]], got: dict[int, list[dict[str, Any]]],
                     rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for n in sorted(set(expected) | set(got)):
        reasons = got.get(n, [])
        shown = "; ".join(f"{r['check']}: {r['message']}" for r in reasons) or "(not quarantined)"
        wanted = expected.get(n)
        if wanted is None:
            lines.append(f"  row {n} {_show(rows[n - 1], list(rows[n - 1]))}: not expected in quarantine, "
                         f"got {shown}")
            continue
        left = list(reasons)
        missing = []
        for reason in wanted:
            hit = next((r for r in left if reason in (r["check"], r["message"])), None)
            if hit is None:
                missing.append(reason)
            else:
                left.remove(hit)
        if missing or left:
            lines.append(f"  row {n} {_show(rows[n - 1], list(rows[n - 1]))}: expected {'; '.join(wanted)}, "
                         f"got {shown}")
    return ["\n".join(["quarantine differs:", *lines])] if lines else []


def run_case(spark: SparkSession, catalog: Catalog, spec: DatasetSpec, case: RuleTest) -> list[str]:
    """What differs between the case's expectations and what the spec does with its rows (empty: it passes)."""
    now = case.instant()
    rows = _frame(spark, case.rows, numbered=True).withColumns({
        "_source_file": F.lit(f"test:{case.name}"), "_partition_date": F.lit(case.run_date),
        "_run_id": F.lit("test"), "_ingested_at": F.lit(now.replace(tzinfo=None))})
    # a nested value is written as YAML and read as the raw file's reader would give it: typed already
    nested = {f.name: f.dataType for f in spec.source_schema().fields
              if isinstance(f.dataType, T.StructType | T.ArrayType | T.MapType) and f.name in rows.columns}
    rows = rows.withColumns({c: F.from_json(column(c), t.simpleString()) for c, t in nested.items()})
    checked = (rows.transform(conform(spec)).transform(clean(spec.cleaning))
               .transform(evaluate(spec, _references(spark, catalog, case), now=now))).cache()
    try:
        problems: list[str] = []
        if case.quarantine is not None:
            found: dict[int, list[dict[str, Any]]] = {}
            for r in checked.select(ROW, ERRORS).collect():
                errors = [e.asDict() for e in r[ERRORS] or [] if e["criticality"] == "error"]
                if errors:
                    found[int(r[ROW])] = errors
            problems += _quarantine_diff({q.row: q.reasons for q in case.quarantine}, found, case.rows)
        if case.silver is not None:
            valid, business = valid_rows(checked)
            silver = [r.asDict() for r in one_per_key(spec, valid).select(*[column(c) for c in business])
                      .collect()]
            problems += _silver_diff(case.silver, silver, spec.keys)
        return problems
    finally:
        checked.unpersist()


def run_spec_tests(spark: SparkSession, catalog: Catalog, datasets: list[str] | None = None) -> list[CaseResult]:
    """Every case of every dataset spec (of `datasets`, when given), in catalog order."""
    results = []
    for spec in catalog.dataset_order():
        if datasets and spec.name not in datasets:
            continue
        for i, case in enumerate(spec.tests):
            where = spec.location(("tests", i))
            results.append(CaseResult(spec.name, case.name, where, run_case(spark, catalog, spec, case)))
    return results
