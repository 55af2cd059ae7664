"""Cleaning steps, applied in the order written. Each step is a pure DataFrame -> DataFrame function."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.specs import models as m

Transform = Callable[[DataFrame], DataFrame]


def _each(columns: list[str], fn) -> Transform:
    return lambda df: df.withColumns({c: fn(F.col(f"`{c}`")) for c in columns})


def _mask_email(col):
    # keep the first character of the local part and the whole domain: j***@example.com
    return F.when(col.contains("@"), F.concat(F.substring(col, 1, 1), F.lit("***@"),
                                              F.substring_index(col, "@", -1))).otherwise(col)


def step_transform(step: m.CleaningStep) -> Transform:
    """The transform of one cleaning step."""
    match step:
        case m.Trim(trim=cols):
            return _each(cols, F.trim)
        case m.Upper(upper=cols):
            return _each(cols, F.upper)
        case m.Lower(lower=cols):
            return _each(cols, F.lower)
        case m.FillNull(fill_null=values):
            return lambda df: df.withColumns(
                {c: F.coalesce(F.col(f"`{c}`"), F.lit(v).cast(df.schema[c].dataType)) for c, v in values.items()})
        case m.Derive(derive=exprs):
            return lambda df: reduce(lambda acc, kv: acc.withColumn(kv[0], F.expr(kv[1])), exprs.items(), df)
        case m.Rename(rename=mapping):
            return lambda df: df.withColumnsRenamed(mapping)
        case m.Drop(drop=cols):
            return lambda df: df.drop(*cols)
        case m.RegexReplace(regex_replace=rules):
            return lambda df: df.withColumns(
                {c: F.regexp_replace(F.col(f"`{c}`"), pat, rep) for c, (pat, rep) in rules.items()})
        case m.MaskEmail(mask_email=cols):
            return _each(cols, _mask_email)
    raise TypeError(f"no transform for cleaning step {step!r}")


def clean(steps: list[m.CleaningStep]) -> Transform:
    """All steps in order, as one transform."""
    transforms = [step_transform(s) for s in steps]
    return lambda df: reduce(lambda acc, t: t(acc), transforms, df)
