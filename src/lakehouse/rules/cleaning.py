"""Cleaning steps, applied in the order written. Each step is a pure DataFrame -> DataFrame function."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.settings import SettingsError
from lakehouse.specs import models as m
from lakehouse.specs.row_checks.common import parse_with_formats
from lakehouse.sql import column, ident

Transform = Callable[[DataFrame], DataFrame]


def _each(columns: list[str], fn: Callable[[Column], Column]) -> Transform:
    return lambda df: df.withColumns({c: fn(column(c)) for c in columns})


def _mask_email(col: Column) -> Column:
    # keep the first character of the local part and the whole domain: j***@example.com
    return F.when(col.contains("@"), F.concat(F.substring(col, 1, 1), F.lit("***@"),
                                              F.substring_index(col, "@", -1))).otherwise(col)


def _mask_card(col: Column) -> Column:
    # keep the last 4 digits of a card number: ************1234 (separators dropped)
    digits = F.regexp_replace(col, r"[^0-9]", "")
    return F.when(F.length(digits) > 4, F.concat(F.repeat(F.lit("*"), F.length(digits) - 4),
                                                  F.substring(digits, -4, 4))).otherwise(digits)


def hmac_sha256(col: Column, key: bytes) -> Column:
    """HMAC-SHA256 of the column's UTF-8 text, hex: H((K^opad) || H((K^ipad) || m)), in Spark SQL functions."""
    block = 64
    key = hashlib.sha256(key).digest() if len(key) > block else key
    key = key.ljust(block, b"\0")
    ipad = bytes(b ^ 0x36 for b in key).hex()
    opad = bytes(b ^ 0x5C for b in key).hex()
    inner = F.unhex(F.sha2(F.concat(F.unhex(F.lit(ipad)), col.cast("string").cast("binary")), 256))
    return F.when(col.isNotNull(), F.sha2(F.concat(F.unhex(F.lit(opad)), inner), 256))


def hash_key(env_name: str) -> bytes:
    key = os.environ.get(env_name, "")
    if not key:
        raise SettingsError(f"the hash cleaning step needs its secret key in the environment variable {env_name}")
    return key.encode("utf-8")


SUPERSEDED = "_superseded"


def superseded(df: DataFrame) -> Column:
    """True on a row a dedup step set aside (it is counted as a duplicate, never merged)."""
    return F.coalesce(F.col(SUPERSEDED), F.lit(False)) if SUPERSEDED in df.columns else F.lit(False)


def _dedup(spec: m.DedupSpec) -> Transform:
    """Mark all but the latest row of each group as superseded: such rows are counted as duplicates and never
    merged, but they stay in the batch (accounted for, and still checked).
    Ties on the sequence column go to the later raw day, then the later file, then the content hash, so the
    choice does not depend on the order Spark reads the rows in."""

    def apply(df: DataFrame) -> DataFrame:
        business = [column(c) for c in df.columns if not c.startswith("_")]
        order = [superseded(df).asc(), column(spec.keep_latest_by).desc_nulls_last()]
        order += [F.col(c).desc() for c in ("_partition_date", "_source_file") if c in df.columns]
        order.append(F.xxhash64(*business).desc())
        # within each run date: a batch of several days sets aside what each day's own load would
        by_day = [F.col("_partition_date")] if "_partition_date" in df.columns else []
        window = Window.partitionBy(*by_day, *[column(c) for c in spec.columns]).orderBy(*order)
        # a row with a null among the columns is nobody's duplicate (as in the unique check)
        complete = reduce(lambda acc, c: acc & column(c).isNotNull(), spec.columns, F.lit(True))
        return df.withColumn(SUPERSEDED, superseded(df) | (complete & (F.row_number().over(window) > 1)))

    return apply


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
                {c: F.coalesce(column(c), F.lit(v).cast(df.schema[c].dataType)) for c, v in values.items()})
        case m.Derive(derive=exprs):
            return lambda df: reduce(lambda acc, kv: acc.withColumn(kv[0], F.expr(kv[1])), exprs.items(), df)
        case m.Rename(rename=mapping):
            return lambda df: df.withColumnsRenamed(mapping)
        case m.Drop(drop=cols):
            return lambda df: df.drop(*cols)
        case m.RegexReplace(regex_replace=rules):
            return lambda df: df.withColumns(
                {c: F.regexp_replace(column(c), pat, rep) for c, (pat, rep) in rules.items()})
        case m.MaskEmail(mask_email=cols):
            return _each(cols, _mask_email)
        case m.Title(title=cols):
            return _each(cols, F.initcap)
        case m.StandardizeColumnNames():
            return lambda df: df  # applied to the raw columns before the typed cast (see conform)
        case m.Cast(cast=types):
            return lambda df: df.withColumns({c: column(c).cast(t) for c, t in types.items()})
        case m.Coalesce(coalesce=targets):
            return lambda df: df.withColumns({c: F.coalesce(*[F.expr(e) for e in exprs])
                                              for c, exprs in targets.items()})
        case m.ParseDates(parse_dates=specs):
            def parse(c: str, spec: m.ParseSpec) -> Column:
                parsed = F.expr(parse_with_formats(ident(c), spec.formats))
                return F.to_date(parsed) if spec.type == "date" else parsed
            return lambda df: df.withColumns({c: parse(c, spec) for c, spec in specs.items()})
        case m.MaskCard(mask_card=cols):
            return _each(cols, _mask_card)
        case m.Hash(hash=spec):
            key = hash_key(spec.key_env)
            return _each(spec.columns, lambda col: hmac_sha256(col, key))
        case m.Dedup(dedup=spec):
            return _dedup(spec)
    raise TypeError(f"no transform for cleaning step {step!r}")


def clean(steps: list[m.CleaningStep]) -> Transform:
    """All steps in order, as one transform."""
    transforms = [step_transform(s) for s in steps]
    return lambda df: reduce(lambda acc, t: t(acc), transforms, df)
