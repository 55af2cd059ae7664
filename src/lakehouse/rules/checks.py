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
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.errors import SqlFragmentError
from lakehouse.rules.failures import CAST_ERRORS, ERROR_TYPE, failure_list
from lakehouse.sources.reader import RAW_RECORD
from lakehouse.specs import models as m
from lakehouse.sql import all_of, any_of, ident, instant, literal, sql_type

ERRORS = "_errors"
HAS_ERROR = "_has_error"
# local@label.label...tld, the tld letters only. \p{Alnum} and \p{Alpha} are ASCII-only in Java regex (as
# [A-Za-z0-9] and [A-Za-z]) and test a character with one table lookup instead of a chain of ranges: about half
# the time per value. \z, as `$` would accept a trailing newline.
EMAIL_PATTERN = r"^[\p{Alnum}._%+-]+@(?:[\p{Alnum}-]+\.)+\p{Alpha}{2,}\z"
PHONE_PATTERN = r"^\+?[0-9]{7,15}$"
PHONE_SEPARATORS = r"[\s().-]"
REPLACEMENT_CHAR = "\ufffd"


@dataclass(frozen=True)
class CompiledCheck:
    """One check on one column, as SQL text: `fails` is true on a failing row, `message` a string expression."""

    name: str
    column: str | None
    criticality: str
    fails: str
    message: str

    def failed(self) -> str:
        return f"coalesce({self.fails}, false)"


def bounds_text(low: object, high: object, inclusive: bool = True, unit: str = "") -> str:
    """A range in words: `must be >= 0`, `must be < 5`, `must be between 1 and 1000`; a count (with a unit) as
    `must be at least 1 row`, `must be at most 5 characters`."""
    if unit:
        if low is not None and low == high:
            return f"must be exactly {low} {unit}"
        if low is not None and high is not None:
            return f"must be between {low} and {high} {unit}"
        bound = low if low is not None else high
        word = "at least" if low is not None else "at most"
        return f"must be {word} {bound} {unit[:-1] if bound == 1 and unit.endswith('s') else unit}"
    if low is not None and high is not None:
        if inclusive:
            return f"must be between {low} and {high}{unit}"
        return f"must be > {low} and < {high}{unit}"
    if low is not None:
        return f"must be {'>=' if inclusive else '>'} {low}{unit}"
    return f"must be {'<=' if inclusive else '<'} {high}{unit}"


def parse_with_formats(col: str, formats: list[str]) -> str:
    """SQL: the first format that parses the text as a timestamp, else null (never an error, ANSI or not)."""
    return f"coalesce({', '.join(f'try_to_timestamp(CAST({col} AS STRING), {literal(f)})' for f in formats)})"


def _value_message(col: str, text: str) -> str:
    # concat, not format_string: String.format is the most expensive part of a failing row
    return f"concat({literal(col + '=')}, coalesce(CAST({ident(col)} AS STRING), 'null'), {literal(' ' + text)})"


def _length_outside(column: str, low: int | None, high: int | None) -> str:
    """SQL: the text length (in characters) is outside [low, high]. Counting characters walks the whole UTF-8
    value, so it is done once: with both bounds as |2n - (low + high)| > high - low; with only a maximum, the byte
    length (known without counting) settles every value of at most `high` bytes, since characters <= bytes."""
    n = f"length(CAST({ident(column)} AS STRING))"
    if low is not None and high is not None:
        return f"abs(2 * CAST({n} AS BIGINT) - {low + high}) > {high - low}"
    if low is not None:
        return f"{n} < {low}"
    if high is not None:
        return f"octet_length(CAST({ident(column)} AS STRING)) > {high} AND {n} > {high}"
    return "false"


def _is_literal_pattern(pattern: str) -> bool:
    return all(ch.isalnum() or ch in " _@,;:'\"/=!<>%&~#-" for ch in pattern)


def _matches(text: str, pattern: str) -> str:
    """SQL: the Java regex finds a match in `text`. A pattern of plain characters only (no metacharacter) is a
    substring search, done on the UTF-8 bytes without decoding the value or running the regex engine."""
    if pattern and _is_literal_pattern(pattern):
        return f"contains({text}, {literal(pattern)})"
    return f"{text} RLIKE {literal(pattern)}"


def ref_column(check_index: int, column: str) -> str:
    return f"_ref_{check_index}_{column}"


def compile_check(check: m.RowCheck, index: int, now: dt.datetime, by_day: bool = False) -> list[CompiledCheck]:
    """One row check (the `index`-th of its dataset) as SQL, one CompiledCheck per column it applies to.
    `by_day`: the rows carry their run date (`_partition_date`), and a check over the batch (`unique`) looks
    within each run date, as the day's own load would."""
    name = check.name or check.check

    def make(column: str | None, fails: str, message: str) -> CompiledCheck:
        if check.message:
            message = literal(check.message)
        return CompiledCheck(name, column, check.criticality, all_of(check.filter, fails) if check.filter else fails,
                             message)

    match check:
        case m.NotNull():
            return [make(c, f"{ident(c)} IS NULL", literal(f"{c} is null")) for c in check.targets]
        case m.NotEmpty():
            return [make(c, f"{ident(c)} IS NULL OR trim(CAST({ident(c)} AS STRING)) = ''", literal(f"{c} is empty"))
                    for c in check.targets]
        case m.Range():
            out = []
            for c in check.targets:
                lo, hi = (">=", "<=") if check.inclusive else (">", "<")
                bounds = []
                if check.min is not None:
                    bounds.append(f"{ident(c)} {lo} {literal(check.min)}")
                if check.max is not None:
                    bounds.append(f"{ident(c)} {hi} {literal(check.max)}")
                text = bounds_text(check.min, check.max, check.inclusive)
                out.append(make(c, f"NOT ({all_of(*bounds)})", _value_message(c, text)))
            return out
        case m.InSet():
            inside = check.check == "in_set"
            text = "is not in the allowed set" if inside else "is in the forbidden set"
            # a null among the values would make IN null for every other value (and the check never fail);
            # null column values pass anyway, so nulls in the list are left out
            values = [literal(v) for v in check.values if v is not None]
            out = []
            for c in check.targets:
                if values:
                    found = f"{ident(c)} IN ({', '.join(values)})"
                    fails = f"NOT ({found})" if inside else found
                else:  # only nulls listed: nothing is allowed / nothing is forbidden
                    fails = f"{ident(c)} IS NOT NULL" if inside else "false"
                out.append(make(c, fails, _value_message(c, text)))
            return out
        case m.Regex():
            return [make(c, f"NOT ({_matches(f'CAST({ident(c)} AS STRING)', check.pattern)})",
                         _value_message(c, f"does not match {check.pattern}")) for c in check.targets]
        case m.Email():
            return [make(c, f"NOT ({_matches(ident(c), EMAIL_PATTERN)})",
                         _value_message(c, "is not a valid email address")) for c in check.targets]
        case m.Phone():
            def digits(c: str) -> str:
                return f"regexp_replace({ident(c)}, {literal(PHONE_SEPARATORS)}, '')"
            return [make(c, f"NOT ({_matches(digits(c), PHONE_PATTERN)})",
                         _value_message(c, "is not a valid phone number")) for c in check.targets]
        case m.Length():
            return [make(c, _length_outside(c, check.min, check.max),
                         _value_message(c, bounds_text(check.min, check.max, unit="characters") + " long"))
                    for c in check.targets]
        case m.ExistsIn():
            return [make(c, f"{ident(c)} IS NOT NULL AND {ident(ref_column(index, c))} IS NULL",
                         _value_message(c, f"is not in {check.ref}")) for c in check.targets]
        case m.NotInFuture():
            limit = instant(now + dt.timedelta(hours=check.tolerance_hours))
            return [make(c, f"CAST({ident(c)} AS TIMESTAMP) > {limit}", _value_message(c, "is in the future"))
                    for c in check.targets]
        case m.NotOlderThan():
            limit = instant(now - dt.timedelta(days=check.days))
            return [make(c, f"CAST({ident(c)} AS TIMESTAMP) < {limit}",
                         _value_message(c, f"is older than {check.days:g} days")) for c in check.targets]
        case m.Unique():
            cols = ", ".join(ident(c) for c in check.columns)
            complete = all_of(*[f"{ident(c)} IS NOT NULL" for c in check.columns])
            label = ", ".join(check.columns)
            message = (_value_message(check.columns[0], "is not unique in the batch") if len(check.columns) == 1
                       else literal(f"({label}) is not unique in the batch"))
            day = "_partition_date, " if by_day else ""
            return [make(label, all_of(complete, f"count(1) OVER (PARTITION BY {day}{cols}) > 1"), message)]
        case m.Parseable():
            return [make(c, f"{ident(c)} IS NOT NULL AND {parse_with_formats(ident(c), check.formats)} IS NULL",
                         _value_message(c, f"does not match the format{'s' if len(check.formats) > 1 else ''} "
                                           + ", ".join(check.formats))) for c in check.targets]
        case m.Castable():
            return [make(c, f"{ident(c)} IS NOT NULL AND try_cast({ident(c)} AS {check.type}) IS NULL",
                         _value_message(c, f"cannot be cast to {check.type}")) for c in check.targets]
        case m.Compare():
            return [make(None, f"NOT (({check.left}) {check.op} ({check.right}))",
                         literal(f"{check.left} {check.op} {check.right} does not hold"))]
        case m.Expression():
            return [make(None, f"NOT ({check.expression})", literal(f"{check.expression} does not hold"))]
    raise TypeError(f"no compiler for check {check!r}")


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
            if c.column is None and isinstance(check, m.Compare | m.Expression):
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
        if not isinstance(check, m.ExistsIn):
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
    out = [("filter", check.filter)] if check.filter else []
    match check:
        case m.Compare():
            out += [("left", check.left), ("right", check.right)]
        case m.Expression():
            out.append(("expression", check.expression))
    return out


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
