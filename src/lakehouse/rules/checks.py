"""Row checks compiled into one pass: every check becomes a Column that holds a failure struct or null.

`evaluate` adds `_errors` (array<struct<check, column, message, criticality>>): one select over the batch,
no Spark job per rule. Error-level failures send a row to quarantine; warn-level ones are kept and counted.
Checks pass on null values, except `not_null` and `not_empty` (null is what they look for).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.rules.failures import CAST_ERRORS, ERROR_TYPE, failure_list
from lakehouse.sources.reader import RAW_RECORD
from lakehouse.specs import models as m

ERRORS = "_errors"
HAS_ERROR = "_has_error"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
PHONE_PATTERN = r"^\+?[0-9]{7,15}$"
REPLACEMENT_CHAR = "\ufffd"



@dataclass(frozen=True)
class CompiledCheck:
    """One check on one column: `fails` is true on a failing row."""

    name: str
    column: str | None
    criticality: str
    fails: Column
    message: Column

    def failed(self) -> Column:
        return F.coalesce(self.fails, F.lit(False))



def parse_with_formats(col: Column, formats: list[str]) -> Column:
    """The first format that parses the text as a timestamp, else null (never an error, ANSI or not)."""
    return F.coalesce(*[F.try_to_timestamp(col.cast("string"), F.lit(f)) for f in formats])


def _c(name: str) -> Column:
    return F.col(f"`{name}`")


def _value_message(col: str, text: str) -> Column:
    # concat, not format_string: String.format is the most expensive part of a failing row
    return F.concat(F.lit(f"{col}="), F.coalesce(_c(col).cast("string"), F.lit("null")), F.lit(f" {text}"))


def ref_column(check_index: int, column: str) -> str:
    return f"_ref_{check_index}_{column}"


def _compile_one(check: m.RowCheck, index: int) -> list[CompiledCheck]:
    name = check.name or check.check
    where = F.expr(check.filter) if check.filter else F.lit(True)

    def make(column: str | None, fails: Column, message: Column) -> CompiledCheck:
        if check.message:
            message = F.lit(check.message)
        return CompiledCheck(name, column, check.criticality, where & fails, message)

    match check:
        case m.NotNull():
            return [make(c, _c(c).isNull(), F.lit(f"{c} is null")) for c in check.targets]
        case m.NotEmpty():
            return [make(c, _c(c).isNull() | (F.trim(_c(c).cast("string")) == ""), F.lit(f"{c} is empty"))
                    for c in check.targets]
        case m.Range():
            out = []
            for c in check.targets:
                lo = _c(c) >= F.lit(check.min) if check.inclusive else _c(c) > F.lit(check.min)
                hi = _c(c) <= F.lit(check.max) if check.inclusive else _c(c) < F.lit(check.max)
                ok = lo if check.max is None else hi if check.min is None else lo & hi
                brackets = "[]" if check.inclusive else "()"
                text = f"is outside {brackets[0]}{check.min}, {check.max}{brackets[1]}"
                out.append(make(c, ~ok, _value_message(c, text)))
            return out
        case m.InSet():
            values = [F.lit(v) for v in check.values]
            inside = check.check == "in_set"
            text = "is not in the allowed set" if inside else "is in the forbidden set"
            return [make(c, ~_c(c).isin(*values) if inside else _c(c).isin(*values), _value_message(c, text))
                    for c in check.targets]
        case m.Regex():
            return [make(c, ~_c(c).cast("string").rlike(check.pattern),
                         _value_message(c, f"does not match {check.pattern}")) for c in check.targets]
        case m.Email():
            return [make(c, ~_c(c).rlike(EMAIL_PATTERN), _value_message(c, "is not a valid email address"))
                    for c in check.targets]
        case m.Phone():
            return [make(c, ~F.regexp_replace(_c(c), r"[\s().-]", "").rlike(PHONE_PATTERN),
                         _value_message(c, "is not a valid phone number")) for c in check.targets]
        case m.Length():
            out = []
            for c in check.targets:
                n = F.length(_c(c).cast("string"))
                ok = F.lit(True)
                if check.min is not None:
                    ok = ok & (n >= check.min)
                if check.max is not None:
                    ok = ok & (n <= check.max)
                out.append(make(c, ~ok, _value_message(c, f"has a length outside [{check.min}, {check.max}]")))
            return out
        case m.ExistsIn():
            return [make(c, _c(c).isNotNull() & _c(ref_column(index, c)).isNull(),
                         _value_message(c, f"is not in {check.ref}")) for c in check.targets]
        case m.NotInFuture():
            limit = F.current_timestamp() + F.expr(f"INTERVAL {float(check.tolerance_hours) * 3600} SECONDS")
            return [make(c, _c(c).cast("timestamp") > limit, _value_message(c, "is in the future"))
                    for c in check.targets]
        case m.NotOlderThan():
            limit = F.current_timestamp() - F.expr(f"INTERVAL {float(check.days) * 86400} SECONDS")
            return [make(c, _c(c).cast("timestamp") < limit, _value_message(c, f"is older than {check.days} days"))
                    for c in check.targets]
        case m.Unique():
            cols = [_c(c) for c in check.columns]
            seen = F.count(F.lit(1)).over(Window.partitionBy(*cols))
            complete = F.lit(True)
            for col in cols:
                complete = complete & col.isNotNull()
            label = ", ".join(check.columns)
            return [make(label, complete & (seen > 1), F.lit(f"({label}) is not unique in the batch"))]
        case m.Parseable():
            out = []
            for c in check.targets:
                parsed = parse_with_formats(_c(c), check.formats)
                out.append(make(c, _c(c).isNotNull() & parsed.isNull(),
                                _value_message(c, f"does not match any of {check.formats}")))
            return out
        case m.Castable():
            return [make(c, _c(c).isNotNull() & F.expr(f"try_cast(`{c}` AS {check.type})").isNull(),
                         _value_message(c, f"cannot be cast to {check.type}")) for c in check.targets]
        case m.Compare():
            condition = F.expr(f"({check.left}) {check.op} ({check.right})")
            return [make(None, ~condition, F.lit(f"{check.left} {check.op} {check.right} does not hold"))]
        case m.Expression():
            return [make(None, ~F.expr(check.expression), F.lit(f"{check.expression} does not hold"))]
    raise TypeError(f"no compiler for check {check!r}")


def builtin_checks(spec: m.DatasetSpec, df: DataFrame) -> list[CompiledCheck]:
    """Checks every dataset gets: malformed lines, undecodable text, required and key columns present."""
    out = []
    if RAW_RECORD in df.columns:
        out.append(CompiledCheck("malformed_record", None, "error", _c(RAW_RECORD).isNotNull(),
                                 F.lit("the line could not be parsed; raw text kept in raw_record")))
    texts = [f.name for f in df.schema.fields
             if isinstance(f.dataType, T.StringType) and not f.name.startswith("_")]
    if texts:
        bad = F.lit(False)
        for c in texts:
            bad = bad | F.coalesce(_c(c).contains(REPLACEMENT_CHAR), F.lit(False))
        out.append(CompiledCheck("bad_encoding", None, "error", bad,
                                 F.lit("text is not valid in the declared encoding")))
    required = list(dict.fromkeys(spec.keys + spec.required_columns()))
    out += [CompiledCheck("required", c, "error", _c(c).isNull(), F.lit(f"{c} is required but null"))
            for c in required if c in df.columns]
    return out


def compile_checks(spec: m.DatasetSpec, df: DataFrame) -> list[CompiledCheck]:
    compiled = builtin_checks(spec, df)
    for i, check in enumerate(spec.checks):
        compiled += _compile_one(check, i)
    return compiled


def attach_references(spec: m.DatasetSpec, df: DataFrame, refs: dict[str, DataFrame | None]) -> DataFrame:
    """Left-join the key sets that exists_in checks look up: the referenced dataset's silver table (`refs` maps
    dataset name -> table), this batch ('batch.<column>'), or both when a dataset references itself (a row
    may point at one loaded earlier or at one arriving with it)."""
    batch = df
    for i, check in enumerate(spec.checks):
        if not isinstance(check, m.ExistsIn):
            continue
        for c in check.targets:
            alias = ref_column(i, c)
            found = []
            if check.ref_dataset is not None and refs.get(check.ref_dataset) is not None:
                found.append(refs[check.ref_dataset].select(_c(check.ref_column).alias(alias)))
            if check.ref_dataset in (None, spec.name) and check.ref_column in batch.columns:
                found.append(batch.select(_c(check.ref_column).alias(alias)))
            if not found:
                df = df.withColumn(alias, F.lit(None).cast(df.schema[c].dataType))
                continue
            keys = found[0] if len(found) == 1 else found[0].unionByName(found[1])
            keys = keys.where(_c(alias).isNotNull()).distinct()
            df = df.join(keys, df[c] == keys[alias], "left")
    return df


def evaluate(spec: m.DatasetSpec, refs: dict[str, DataFrame | None] | None = None):
    """DataFrame -> DataFrame: adds `_errors` (cast errors from `conform` included); helper columns removed."""

    def apply(df: DataFrame) -> DataFrame:
        with_refs = attach_references(spec, df, refs or {})
        compiled = compile_checks(spec, with_refs)
        # 1) one boolean column per check; 2) the failure records from those flags. Kept apart so that each
        # generated method stays small enough for the JIT: one expression holding twenty checks and their
        # messages compiles into a method the JVM leaves interpreted.
        flags = {f"_fail_{i}": c.failed() for i, c in enumerate(compiled)}
        flagged = with_refs.withColumns(flags)
        failing, error = F.lit(False), F.lit(False)
        for i, c in enumerate(compiled):
            failing = failing | F.col(f"_fail_{i}")
            if c.criticality == "error":
                error = error | F.col(f"_fail_{i}")
        records = [failure_list(F.col(f"_fail_{i}"), c.name, F.lit(c.column).cast("string"), c.message,
                                c.criticality) for i, c in enumerate(compiled)]
        failures = F.concat(*records) if records else F.array()
        if CAST_ERRORS in with_refs.columns:
            failing = failing | (F.size(CAST_ERRORS) > 0)
            error = error | (F.size(CAST_ERRORS) > 0)
            failures = F.concat(F.col(CAST_ERRORS), failures)
        # most rows pass everything: only a failing row pays for building its failure records
        failures = F.when(failing, failures).otherwise(F.array())
        malformed = [i for i, c in enumerate(compiled) if c.name == "malformed_record"]
        if malformed:
            # a line that could not be parsed has no trustworthy fields: that is its only reason
            i = malformed[0]
            failures = F.when(F.col(f"_fail_{i}"), records[i]).otherwise(failures)
        helpers = [c for c in with_refs.columns if c.startswith("_ref_")] + [CAST_ERRORS, *flags]
        return flagged.withColumns({ERRORS: failures.cast(ERROR_TYPE), HAS_ERROR: error}).drop(*helpers)

    return apply


def check_names(spec: m.DatasetSpec, df: DataFrame) -> list[tuple[str, str | None, str]]:
    """(name, column, criticality) of every compiled check, for the quality metrics."""
    names = [("type_mismatch", None, "error")]
    for c in compile_checks(spec, attach_references(spec, df, {})):
        names.append((c.name, c.column, c.criticality))
    return list(dict.fromkeys(names))


def has_error() -> Column:
    """True on a row with an error-level failure (it goes to quarantine)."""
    return F.col(HAS_ERROR)
