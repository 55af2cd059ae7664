"""Cleaning steps that hide personal values before anything reaches silver or quarantine: masks and a keyed hash."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import Field
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.specs.base import Spec
from lakehouse.specs.cleaning_steps.text import each
from lakehouse.specs.steps import Sample, cleaning_step, secret


def _mask_email(col: Column) -> Column:
    # keep the first character of the local part and the whole domain: j***@example.com
    return F.when(col.contains("@"), F.concat(F.substring(col, 1, 1), F.lit("***@"),
                                              F.substring_index(col, "@", -1))).otherwise(col)


def _mask_card(col: Column) -> Column:
    # keep the last 4 digits of a card number: ************1234 (separators dropped)
    digits = F.regexp_replace(col, r"[^0-9]", "")
    return F.when(F.length(digits) > 4, F.concat(F.repeat(F.lit("*"), F.length(digits) - 4),
                                                  F.substring(digits, -4, 4))).otherwise(digits)


@cleaning_step("mask_email", argument="list of columns", does="keep the first letter and the domain: "
               "`j***@example.com`", example="- mask_email: [email]", masks=True,
               sample=Sample("email string", [{"email": "jane.doe@example.com"}, {"email": "not an email"}],
                             [{"email": "j***@example.com"}, {"email": "not an email"}]))
def mask_email(df: DataFrame, *, mask_email: list[str]) -> DataFrame:
    return each(df, mask_email, _mask_email)


@cleaning_step("mask_card", argument="list of columns", does="keep the last 4 digits: `************1234`",
               example="- mask_card: [card_number]", masks=True,
               sample=Sample("card_number string", [{"card_number": "4111 1111 1111 1234"}],
                             [{"card_number": "************1234"}]))
def mask_card(df: DataFrame, *, mask_card: list[str]) -> DataFrame:
    return each(df, mask_card, _mask_card)


def hmac_sha256(col: Column, key: bytes) -> Column:
    """HMAC-SHA256 of the column's UTF-8 text, hex: H((K^opad) || H((K^ipad) || m)), in Spark SQL functions."""
    block = 64
    key = hashlib.sha256(key).digest() if len(key) > block else key
    key = key.ljust(block, b"\0")
    ipad = bytes(b ^ 0x36 for b in key).hex()
    opad = bytes(b ^ 0x5C for b in key).hex()
    inner = F.unhex(F.sha2(F.concat(F.unhex(F.lit(ipad)), col.cast("string").cast("binary")), 256))
    return F.when(col.isNotNull(), F.sha2(F.concat(F.unhex(F.lit(opad)), inner), 256))


class HashSpec(Spec):
    columns: list[str] = Field(min_length=1)
    key_env: str = Field(default="LAKEHOUSE_HASH_KEY", pattern=r"^[A-Z_][A-Z0-9_]*$",
                         description="environment variable holding the secret key (never the key itself)")


# the sample's digest is Python's own HMAC, so the test compares two implementations
_SAMPLE_DIGEST = hmac.new(b"sample-key", b"CUST00042", hashlib.sha256).hexdigest()


@cleaning_step("hash", argument="`{columns: [...], key_env: VAR}`",
               does="HMAC-SHA256 (hex) of the value with the secret key read from the environment variable `key_env` "
                    "(default `LAKEHOUSE_HASH_KEY`); the key is never in the YAML; a missing key is a configuration "
                    "error (exit 2)", example="- hash: {columns: [customer_id]}", masks=True,
               reads=lambda spec: spec.columns, secret=lambda spec: spec.key_env,
               sample=Sample("customer_id string", [{"customer_id": "CUST00042"}, {"customer_id": None}],
                             [{"customer_id": _SAMPLE_DIGEST}, {"customer_id": None}],
                             env={"LAKEHOUSE_HASH_KEY": "sample-key"}))
def hash(df: DataFrame, *, hash: HashSpec) -> DataFrame:  # noqa: A001 (the step's name)
    key = secret("hash", hash.key_env).encode("utf-8")
    return each(df, hash.columns, lambda col: hmac_sha256(col, key))
