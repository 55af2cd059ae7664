"""Row checks compiled into one pass: every check becomes a SQL condition that holds on a failing row.

`evaluate` adds `_errors` (array<struct<check, column, message, criticality>>): one select over the batch, no
Spark job per rule, the whole rule set handed to Spark as SQL text in one call. Error-level failures send a row
to quarantine; warn-level ones are kept and counted.
Checks pass on null values, except `not_null` and `not_empty` (null is what they look for).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.errors import SqlFragmentError
from lakehouse.rules.failures import CAST_ERRORS, ERROR_TYPE, failure_list
from lakehouse.sources.columns import RAW_RECORD
from lakehouse.specs import models as m
from lakehouse.specs import vocabulary
from lakehouse.specs.row_checks.relations import ref_column
from lakehouse.specs.vocabulary import CompiledCheck
from lakehouse.sql import any_of, ident, literal, sql_type

ERRORS = "_errors"
HAS_ERROR = "_has_error"
REPLACEMENT_CHAR = "\ufffd"


def compile_check(check: m.RowCheck, index: int, now: dt.datetime, by_day: bool = False) -> list[CompiledCheck]:
    """One row check (the `index`-th of its dataset) as SQL, one CompiledCheck per column it applies to, by its
    registered function (specs.vocabulary). `by_day`: the rows carry their run date (`_partition_date`), and a
    check over the batch (`unique`) looks within each run date, as the day's own load would."""
    return vocabulary.to_sql(check, vocabulary.CheckContext(now, index, by_day))


def builtin_checks(spec: m.DatasetSpec, schema: T.StructType) -> list[CompiledCheck]:
    """Checks every dataset gets: malformed lines, undecodable text, required and key columns present."""
    out = []
    names = schema.fieldNames()
    if RAW_RECORD in names:
        out.append(CompiledCheck("malformed_record", None, "error", f"{ident(RAW_RECORD)} IS NOT NULL",
                                 literal("the line could not be parsed; raw text kept in raw_record")))
    texts = [f.name for f in schema.fields if isinstance(f.dataType, T.StringType) and not f.name.startswith("_")]
    if texts:
        # U+FFFD stands for bytes the declared encoding could not decode; a NUL character is binary data
        bad = any_of(*[f"coalesce(contains({ident(c)}, {literal(REPLACEMENT_CHAR)}) OR contains({ident(c)}, chr(0)), "
                       f"false)" for c in texts])
        out.append(CompiledCheck("bad_encoding", None, "error", bad,
                                 literal("text is not valid in the declared encoding (or holds NUL characters)")))
    required = list(dict.fromkeys(spec.keys + spec.required_columns()))
    out += [CompiledCheck("required", c, "error", f"{ident(c)} IS NULL", literal(f"{c} is required but null"))
            for c in required if c in names]
    return out


def compile_checks(spec: m.DatasetSpec, schema: T.StructType, now: dt.datetime | None = None
                   ) -> list[CompiledCheck]:
    """Every row check of the dataset (built-in ones first) as SQL. `now` is the instant time-relative checks
    compare with: the run's start, so that every dataset of a run is judged against the same moment."""
    now = now or dt.datetime.now(dt.UTC)
    compiled = builtin_checks(spec, schema)
    business = [f for f in schema.fieldNames() if not f.startswith("_")]
    for i, check in enumerate(spec.checks):
        for c in compile_check(check, i, now, by_day="_partition_date" in schema.fieldNames()):
            if c.column is None and vocabulary.kind_of(check).sql:
                # a check written as SQL records the columns it reads
                text = " ".join(t for _, t in check_sql(check))
                found = [f for f in business if re.search(rf"(?<![\w.`]){re.escape(f)}(?![\w`])|`{re.escape(f)}`", text)]
                c = CompiledCheck(c.name, ",".join(found) or None, c.criticality, c.fails, c.message)
            compiled.append(c)
    return compiled


def _not_after(day: Column) -> Callable[[Column], Column]:
    """The lambda `d -> d <= day` for a higher-order function."""
    return lambda d: d <= day


def attach_references(spec: m.DatasetSpec, df: DataFrame, refs: dict[str, DataFrame | None]) -> DataFrame:
    """Left-join the key sets that exists_in checks look up: the referenced dataset's silver table (`refs` maps
    dataset name -> table), this batch ('batch.<column>'), or both when a dataset references itself (a row
    may point at one loaded earlier or at one arriving with it)."""
    batch = df
    batch_columns = batch.columns
    # a batch of several run dates: a row finds the batch's keys of its own day only, as the day's own load would
    by_day = "_partition_date" in batch_columns
    for i, check in enumerate(spec.checks):
        if not isinstance(check, m.Reference):
            continue
        for c in check.targets:
            alias = ref_column(i, c)
            day = f"{alias}_day"
            found = []
            ref_table = refs.get(check.ref_dataset) if check.ref_dataset is not None else None
            if ref_table is not None:
                found.append(ref_table.selectExpr(f"{ident(check.ref_column)} AS {ident(alias)}",
                                                  f"CAST(NULL AS DATE) AS {ident(day)}"))
            if check.ref_dataset in (None, spec.name) and check.ref_column in batch_columns:
                found.append(batch.selectExpr(f"{ident(check.ref_column)} AS {ident(alias)}",
                                              f"{'_partition_date' if by_day else 'CAST(NULL AS DATE)'} AS {ident(day)}"))
            if not found:
                df = df.withColumn(alias, F.lit(None).cast(batch.schema[c].dataType))
                continue
            keys = found[0] if len(found) == 1 else found[0].unionByName(found[1])
            keys = keys.where(f"{ident(alias)} IS NOT NULL")
            if not by_day:
                distinct = keys.select(alias).distinct()
                df = df.join(distinct, df[c] == distinct[alias], "left")
                continue
            # one row per key: whether the table holds it (any day), and the batch days that carry it. A dataset
            # that references itself also finds the rows of the batch's earlier days (loaded before, one by one)
            keys = keys.groupBy(alias).agg(F.max(F.col(day).isNull()).alias(f"{day}_any"),
                                           F.collect_set(day).alias(f"{day}s"))
            row_day = df["_partition_date"]
            in_batch = (F.exists(keys[f"{day}s"], _not_after(row_day)) if check.ref_dataset == spec.name
                        else F.array_contains(keys[f"{day}s"], row_day))
            df = df.join(keys, (df[c] == keys[alias]) & (keys[f"{day}_any"] | in_batch), "left") \
                .drop(f"{day}_any", f"{day}s")
    return df


def check_sql(check: m.RowCheck) -> list[tuple[str, str]]:
    """(field, text) of every SQL fragment of one row check written in the YAML."""
    return vocabulary.sql_fragments(check)


def user_sql(spec: m.DatasetSpec) -> list[tuple[str, str]]:
    """(where, text) of every SQL fragment of the row checks written in the YAML."""
    return [(f"checks[{i}] ({check.name or check.check}) {name}", text)
            for i, check in enumerate(spec.checks) for name, text in check_sql(check)]


def check_user_sql_text(spark: SparkSession, check: m.RowCheck) -> tuple[str, str] | None:
    """(field, problem) of the first SQL fragment of `check` that is not one expression on its own."""
    parser = spark._jsparkSession.sessionState().sqlParser()
    for name, text in check_sql(check):
        try:
            parser.parseExpression(text)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return name, f"not a SQL expression on its own: {text!r}: {first}"
    return None


def check_user_sql(spec: m.DatasetSpec, spark: SparkSession) -> None:
    """Parse each SQL fragment of the YAML on its own before it is embedded in the compiled checks: text that is
    not one expression (an unbalanced parenthesis, say) could otherwise combine with the text around it and
    mean something else instead of failing."""
    parser = spark._jsparkSession.sessionState().sqlParser()  # F.expr only parses when the plan is analysed
    for where, text in user_sql(spec):
        try:
            parser.parseExpression(text)
        except Exception as exc:
            raise SqlFragmentError(spec.name, where, text, str(exc).splitlines()[0]) from exc


def evaluate(spec: m.DatasetSpec, refs: dict[str, DataFrame | None] | None = None, now: dt.datetime | None = None
             ) -> Callable[[DataFrame], DataFrame]:
    """DataFrame -> DataFrame: adds `_errors` (cast errors from `conform` included); helper columns removed.
    `now`: the instant not_in_future / not_older_than compare with (default: the moment this is called)."""

    def apply(df: DataFrame) -> DataFrame:
        check_user_sql(spec, df.sparkSession)
        with_refs = attach_references(spec, df, refs or {})
        schema = with_refs.schema
        columns = schema.fieldNames()
        compiled = compile_checks(spec, schema, now)
        # 1) one boolean column per check; 2) the failure records from those flags. Kept apart so that each
        # generated method stays small enough for the JIT: one expression holding twenty checks and their
        # messages compiles into a method the JVM leaves interpreted.
        flags = [f"_fail_{i}" for i in range(len(compiled))]
        flagged = with_refs.selectExpr("*", *[f"{c.failed()} AS {f}" for f, c in zip(flags, compiled, strict=True)])
        failing = list(flags)
        error = [f for f, c in zip(flags, compiled, strict=True) if c.criticality == "error"]
        records = [failure_list(f, c.name, c.column, c.message, c.criticality)
                   for f, c in zip(flags, compiled, strict=True)]
        listed = list(records)
        if CAST_ERRORS in columns:
            has_cast_error = f"size({ident(CAST_ERRORS)}) > 0"
            failing.append(has_cast_error)
            if spec.on_type_mismatch != "rescue":  # rescued values are warnings: the row goes on
                error.append(has_cast_error)
            listed.insert(0, ident(CAST_ERRORS))
        failures = f"concat({', '.join(listed)})" if listed else "array()"
        # most rows pass everything: only a failing row pays for building its failure records
        failures = f"CASE WHEN {any_of(*failing)} THEN {failures} ELSE array() END"
        malformed = [i for i, c in enumerate(compiled) if c.name == "malformed_record"]
        if malformed:
            # a line that could not be parsed has no trustworthy fields: that is its only reason
            i = malformed[0]
            failures = f"CASE WHEN {flags[i]} THEN {records[i]} ELSE {failures} END"
        kept = [ident(c) for c in columns if not c.startswith("_ref_") and c != CAST_ERRORS]
        return flagged.selectExpr(*kept, f"CAST({failures} AS {sql_type(ERROR_TYPE)}) AS {ident(ERRORS)}",
                                  f"{any_of(*error)} AS {ident(HAS_ERROR)}")

    return apply


def check_names(spec: m.DatasetSpec, df: DataFrame) -> list[tuple[str, str | None, str]]:
    """(name, column, criticality) of every compiled check, for the quality metrics."""
    mismatch = "warn" if spec.on_type_mismatch == "rescue" else "error"
    names: list[tuple[str, str | None, str]] = [("type_mismatch", None, mismatch)]
    for c in compile_checks(spec, df.schema):
        names.append((c.name, c.column, c.criticality))
    return list(dict.fromkeys(names))


def has_error() -> Column:
    """True on a row with an error-level failure (it goes to quarantine)."""
    return F.col(HAS_ERROR)
