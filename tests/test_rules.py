"""Row checks, cleaning steps and the typed cast, on small DataFrames with edge values."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.errors import SettingsError, SqlFragmentError
from lakehouse.rules.checks import ERRORS, evaluate
from lakehouse.rules.cleaning import clean
from lakehouse.rules.conform import conform
from lakehouse.rules.failures import CAST_ERRORS
from lakehouse.specs import models as m


def dataset(checks=(), cleaning=(), schema=None, keys=("id",)) -> m.DatasetSpec:
    return m.DatasetSpec.model_validate({
        "name": "t", "source": {"format": "csv", "path": "raw/t"},
        "schema": schema or {"id": "string", "v": "string"}, "keys": list(keys),
        "cleaning": list(cleaning), "checks": list(checks)})


def failures(spark, spec, rows, schema="id string, v string", refs=None) -> dict[str, list[str]]:
    """id -> names of the checks the row failed."""
    df = spark.createDataFrame(rows, schema)
    out = df.transform(evaluate(spec, refs)).select("id", ERRORS).collect()
    return {r.id: sorted(e.check for e in r[ERRORS]) for r in out}


def test_not_null_and_not_empty_treat_blank_and_unicode(spark):
    spec = dataset([{"check": "not_null", "column": "v"}, {"check": "not_empty", "column": "v"}])
    got = failures(spark, spec, [("a", None), ("b", ""), ("c", "   "), ("d", "ü"), ("e", "x")])
    assert got == {"a": ["not_empty", "not_null"], "b": ["not_empty"], "c": ["not_empty"], "d": [], "e": []}


@pytest.mark.parametrize("inclusive, expected", [(True, {"lo": [], "hi": [], "below": ["range"], "null": []}),
                                                  (False, {"lo": ["range"], "hi": ["range"], "below": ["range"],
                                                           "null": []})])
def test_range_boundaries(spark, inclusive, expected):
    spec = dataset([{"check": "range", "column": "n", "min": 1, "max": 10, "inclusive": inclusive}],
                   schema={"id": "string", "n": "int"})
    got = failures(spark, spec, [("lo", 1), ("hi", 10), ("below", 0), ("null", None)], "id string, n int")
    assert got == expected


def test_in_set_regex_email_phone(spark):
    spec = dataset([
        {"check": "in_set", "column": "v", "values": ["a@b.io", "x"], "name": "allowed"},
        {"check": "regex", "column": "v", "pattern": "^[a-z@.]+$"},
        {"check": "email", "column": "v"},
        {"check": "phone", "column": "p"},
    ], schema={"id": "string", "v": "string", "p": "string"})
    got = failures(spark, spec, [("1", "a@b.io", "+1 (555) 123-4567"), ("2", "Bad Mail", "call me"),
                                 ("3", None, None)], "id string, v string, p string")
    assert got == {"1": [], "2": ["allowed", "email", "phone", "regex"], "3": []}


def test_exists_in_uses_the_reference_table(spark):
    spec = dataset([{"check": "exists_in", "column": "v", "ref": "products.product_id"}])
    ref = spark.createDataFrame([("P1",), ("P2",), (None,)], "product_id string")
    got = failures(spark, spec, [("a", "P1"), ("b", "P9"), ("c", None)], refs={"products": ref})
    assert got == {"a": [], "b": ["exists_in"], "c": []}
    # with no reference table yet, every non-null value fails: nothing unverifiable reaches silver
    assert failures(spark, spec, [("a", "P1")], refs={"products": None}) == {"a": ["exists_in"]}


def test_exists_in_the_same_batch_and_in_the_own_silver_table(spark):
    # 'batch.<column>': the value must occur in this run's rows (a return pointing at a sale of the same day)
    spec = dataset([{"check": "exists_in", "column": "v", "ref": "batch.id"}])
    got = failures(spark, spec, [("a", None), ("b", "a"), ("c", "zz"), ("d", "d"), ("é", "é")])
    assert got == {"a": [], "b": [], "c": ["exists_in"], "d": [], "é": []}
    # its own dataset's name: the silver table so far or this batch
    own = dataset([{"check": "exists_in", "column": "v", "ref": "t.id"}])
    silver = spark.createDataFrame([("old",)], "id string")
    got = failures(spark, own, [("a", "old"), ("b", "a"), ("c", "gone")], refs={"t": silver})
    assert got == {"a": [], "b": [], "c": ["exists_in"]}
    assert own.references() == ["t"] and spec.references() == []


def test_exists_in_batch_names_a_known_column():
    with pytest.raises(ValueError, match="exists_in ref batch names unknown column"):
        dataset([{"check": "exists_in", "column": "v", "ref": "batch.nope"}])


def test_compare_expression_filter_and_warn(spark):
    spec = dataset([
        {"check": "compare", "left": "lo", "op": "<=", "right": "hi", "name": "ordered"},
        {"check": "expression", "expression": "hi < 100", "criticality": "warn", "name": "small"},
        {"check": "not_null", "column": "lo", "filter": "hi > 50", "name": "lo_when_big"},
    ], schema={"id": "string", "lo": "int", "hi": "int"})
    rows = [("ok", 1, 2), ("rev", 5, 2), ("big", None, 150), ("nullbig", None, 60), ("nullsmall", None, 10)]
    got = failures(spark, spec, rows, "id string, lo int, hi int")
    assert got == {"ok": [], "rev": ["ordered"], "big": ["lo_when_big", "small"], "nullbig": ["lo_when_big"],
                   "nullsmall": []}
    df = spark.createDataFrame(rows, "id string, lo int, hi int").transform(evaluate(spec))
    crit = {r.id: sorted(e.criticality for e in r[ERRORS]) for r in df.collect()}
    assert crit["big"] == ["error", "warn"]


def test_keys_and_required_columns_are_implicit_errors_and_bad_encoding(spark):
    spec = dataset(schema={"id": "string not null", "v": "string"})
    got = failures(spark, spec, [(None, "x"), ("b", "Caf\ufffd"), ("c", "Café")])
    assert got == {None: ["required"], "b": ["bad_encoding"], "c": []}


def test_conform_casts_and_reports_values_that_do_not_fit(spark):
    spec = dataset(schema={"id": "string", "n": "int", "price": "decimal(5,2)", "ts": "timestamp",
                           "missing": "date"})
    raw = spark.createDataFrame([("a", "7", "1.50", "2024-01-02 03:04:05"), ("b", "seven", "", None),
                                 ("c", " ", "12345.6", "not a time")], "id string, n string, price string, ts string")
    out = {r.id: r for r in raw.transform(conform(spec)).collect()}
    assert out["a"].n == 7 and str(out["a"].price) == "1.50" and out["a"].ts == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert out["a"].missing is None and out["a"][CAST_ERRORS] == []
    assert [(e.column, e.message) for e in out["b"][CAST_ERRORS]] == [("n", "value seven is not a valid int")]
    # blank is null, not a type error; an overflowing decimal and an unparseable timestamp are errors
    assert sorted(e.column for e in out["c"][CAST_ERRORS]) == ["price", "ts"]


def test_cleaning_steps_in_order(spark):
    steps = [{"trim": ["name"]}, {"upper": ["name"]}, {"fill_null": {"qty": 0}},
             {"derive": {"total": "qty * 2"}}, {"rename": {"name": "label"}}, {"drop": ["junk"]},
             {"regex_replace": {"label": ["[^A-Z]", ""]}}, {"mask_email": ["mail"]}]
    spec = dataset(cleaning=steps, schema={"id": "string", "name": "string", "qty": "int", "junk": "string",
                                           "mail": "string"})
    df = spark.createDataFrame([("1", "  ab-c ", None, "j", "jane.doe@example.com"),
                                ("2", None, 3, "j", "not-an-email")],
                               "id string, name string, qty int, junk string, mail string")
    expected = spark.createDataFrame([("1", "ABC", 0, "j***@example.com", 0), ("2", None, 3, "not-an-email", 6)],
                                     "id string, label string, qty int, mail string, total int")
    assert_df_equality(df.transform(clean(spec.cleaning)), expected, ignore_nullable=True,
                       ignore_column_order=True)
    assert spec.output_columns() == ["id", "label", "qty", "mail", "total"]


def test_malformed_line_has_a_single_reason(spark):
    spec = dataset(schema={"id": "string not null", "v": "string"})
    df = spark.createDataFrame([(None, None, "garbage,line"), ("a", "x", None)],
                               T.StructType([T.StructField("id", T.StringType()), T.StructField("v", T.StringType()),
                                             T.StructField("_raw_record", T.StringType())]))
    got = {r.id: [e.check for e in r[ERRORS]] for r in df.transform(evaluate(spec)).collect()}
    assert got == {None: ["malformed_record"], "a": []}


def test_unique_within_batch_on_several_columns(spark):
    spec = dataset([{"check": "unique", "columns": ["a", "b"]}], schema={"id": "string", "a": "string", "b": "int"})
    got = failures(spark, spec, [("1", "x", 1), ("2", "x", 1), ("3", "x", 2), ("4", None, 1), ("5", None, 1)],
                   "id string, a string, b int")
    assert got == {"1": ["unique"], "2": ["unique"], "3": [], "4": [], "5": []}


def test_parseable_castable_and_age_checks(spark):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    spec = dataset([
        {"check": "parseable", "column": "d", "type": "date", "formats": ["yyyy-MM-dd", "dd/MM/yyyy"]},
        {"check": "castable", "column": "n", "type": "decimal(4,1)"},
        {"check": "not_older_than", "column": "ts", "days": 30},
        {"check": "not_in_future", "column": "ts", "tolerance_hours": 1},
    ], schema={"id": "string", "d": "string", "n": "string", "ts": "timestamp"})
    rows = [("ok", "2024-02-29", "123.4", now), ("fmt2", "29/02/2024", "-5", now - dt.timedelta(days=29)),
            ("bad", "2024-02-30x", "12345", now - dt.timedelta(days=31)),
            ("future", None, None, now + dt.timedelta(hours=2))]
    got = failures(spark, spec, rows, "id string, d string, n string, ts timestamp")
    assert got == {"ok": [], "fmt2": [], "bad": ["castable", "not_older_than", "parseable"],
                   "future": ["not_in_future"]}


@pytest.mark.parametrize("check", [
    {"check": "expression", "expression": "v = 'a') OR (true"},
    {"check": "compare", "left": "v", "op": "=", "right": "'a') OR (true"},
    {"check": "not_null", "column": "v", "filter": "v = 'a') OR (true"}])
def test_a_sql_fragment_must_be_one_expression_on_its_own(spark, check):
    """Embedded in the compiled check, such text would parse (as 'NOT (v = 'a') OR (true)') and never fail."""
    spec = dataset([check])
    with pytest.raises(SqlFragmentError, match="is not a SQL expression"):
        failures(spark, spec, [("1", "b")])


@pytest.mark.parametrize("bounds", [{"min": 2, "max": 4}, {"min": 3, "max": 3}, {"min": 2}, {"max": 3},
                                    {"min": 0, "max": 0}])
def test_length_counts_characters_not_bytes(spark, bounds):
    spec = dataset([{"check": "length", "column": "v", **bounds}])
    values = ["", "a", "ab", "abc", "abcd", "abcde", "üü", "üüü", "日本語", "日本語です", "😀😀😀", "   ", None]
    got = failures(spark, spec, [(str(i), v) for i, v in enumerate(values)])
    lo, hi = bounds.get("min", 0), bounds.get("max", 10**9)
    assert got == {str(i): [] if v is None or lo <= len(v) <= hi else ["length"] for i, v in enumerate(values)}


@pytest.mark.parametrize("pattern", ["example", "a b", "x-y", "日本", "ex.mple", "^ex", "ple$", "e+x", "[ab]", "a|b"])
def test_regex_check_finds_the_pattern_anywhere_unless_anchored(spark, pattern):
    """Plain-character patterns run as a substring search, the others through the regex engine: the results
    must be those of Python's re.search for these patterns, which mean the same in Java."""
    import re

    spec = dataset([{"check": "regex", "column": "v", "pattern": pattern}])
    values = ["example", "an example here", "EXAMPLE", "exmple", "a b", "ab", "x-y-z", "日本語", "本日", "exxmple",
              "e", "", "ple", "b", None]
    got = failures(spark, spec, [(str(i), v) for i, v in enumerate(values)])
    assert got == {str(i): [] if v is None or re.search(pattern, v) else ["regex"] for i, v in enumerate(values)}


@pytest.mark.parametrize("value, valid", [
    ("a@b.io", True), ("first.last+tag@mail.example.co", True), ("x_1%@a-b.c-d.museum", True),
    ("a@b", False), ("a@b.c", False), ("a@b.c1", False), ("a@.com", False), ("a@b..com", False),
    ("@b.com", False), ("a b@c.com", False), ("a@b.com\n", False), ("a@b.com.", False), ("ü@b.com", False),
    ("a@@b.com", False), ("", False)])
def test_email_addresses(spark, value, valid):
    spec = dataset([{"check": "email", "column": "v"}])
    assert failures(spark, spec, [("1", value)]) == {"1": [] if valid else ["email"]}


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_age_checks_compare_with_the_given_instant_at_their_boundaries(spark, zone):
    now = dt.datetime(2026, 3, 1, 12, 0)  # naive: UTC, whatever the session time zone
    spec = dataset([{"check": "not_in_future", "column": "ts", "tolerance_hours": 1},
                    {"check": "not_older_than", "column": "ts", "days": 30}],
                   schema={"id": "string", "ts": "timestamp"})
    us = dt.timedelta(microseconds=1)
    rows = [("at_tolerance", now + dt.timedelta(hours=1)), ("past_tolerance", now + dt.timedelta(hours=1) + us),
            ("at_age", now - dt.timedelta(days=30)), ("past_age", now - dt.timedelta(days=30) - us)]
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        df = spark.createDataFrame(
            [(i, r.replace(tzinfo=dt.UTC)) for i, r in rows], "id string, ts timestamp")
        out = df.transform(evaluate(spec, now=now)).select("id", ERRORS).collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    got = {r.id: sorted(e.check for e in r[ERRORS]) for r in out}
    assert got == {"at_tolerance": [], "past_tolerance": ["not_in_future"], "at_age": [],
                   "past_age": ["not_older_than"]}


@pytest.mark.parametrize("escaped", ["false", "true"])
def test_values_from_the_yaml_keep_quotes_backslashes_and_unicode(spark, escaped):
    """Rule values reach Spark as SQL text: they must mean exactly what the YAML says under either setting of
    the parser's backslash escapes."""
    tricky = ["O'Brien", "a\\b", "x\\'; DROP", "日本", "tab\there"]
    spec = dataset([
        {"check": "in_set", "column": "v", "values": tricky, "name": "known"},
        {"check": "not_in_set", "column": "v", "values": ["it's bad"], "name": "banned",
         "message": "can't be 'it''s bad'"},
        {"check": "regex", "column": "r", "pattern": "^\\d+'?$"},
        {"check": "range", "column": "f", "min": 0.1, "max": 0.3, "inclusive": False},
        {"check": "in_set", "column": "b", "values": [True, None], "name": "flag"},
    ], schema={"id": "string", "v": "string", "r": "string", "f": "double", "b": "boolean"})
    rows = [(f"ok{i}", v, "12'", 0.2, True) for i, v in enumerate(tricky)]
    rows += [("unknown", "O'Brian", "12", 0.1000001, True), ("banned", "it's bad", "1x", 0.1, False),
             ("edge", "a\\\\b", "\\d", 0.30000000000000004, None)]
    previous = spark.conf.get("spark.sql.parser.escapedStringLiterals")
    spark.conf.set("spark.sql.parser.escapedStringLiterals", escaped)
    try:
        df = spark.createDataFrame(rows, "id string, v string, r string, f double, b boolean")
        out = df.transform(evaluate(spec)).select("id", ERRORS).collect()
    finally:
        spark.conf.set("spark.sql.parser.escapedStringLiterals", previous)
    got = {r.id: sorted(e.check for e in r[ERRORS]) for r in out}
    assert got == {**{f"ok{i}": [] for i in range(len(tricky))}, "unknown": ["known"],
                   "banned": ["banned", "flag", "known", "range", "regex"], "edge": ["known", "range", "regex"]}
    messages = {e.check: e.message for r in out for e in r[ERRORS] if r.id == "banned"}
    assert messages["banned"] == "can't be 'it''s bad'"
    assert messages["known"] == "v=it's bad is not in the allowed set"


def test_masking_and_pseudonymisation_steps(spark, monkeypatch):
    import hashlib
    import hmac

    monkeypatch.setenv("TEST_HASH_KEY", "s3cr3t-ключ")
    spec = dataset(cleaning=[{"mask_card": ["card"]}, {"hash": {"columns": ["cust"], "key_env": "TEST_HASH_KEY"}},
                             {"title": ["name"]}, {"coalesce": {"contact": ["email", "phone", "'none'"]}},
                             {"parse_dates": {"born": {"type": "date", "formats": ["dd.MM.yyyy", "yyyy-MM-dd"]}}},
                             {"cast": {"score": "double"}}],
                   schema={"id": "string", "card": "string", "cust": "string", "name": "string",
                           "email": "string", "phone": "string", "born": "string", "score": "string"})
    df = spark.createDataFrame(
        [("1", "4111 1111-1111 1234", "CUST001", "ada LOVELACE", None, "+44 1", "10.12.1815", "9.5"),
         ("2", "123", None, None, None, None, "1815-12-10", "x")],
        "id string, card string, cust string, name string, email string, phone string, born string, score string")
    out = {r.id: r for r in df.transform(clean(spec.cleaning)).collect()}
    assert out["1"].card == "************1234" and out["2"].card == "123"
    expected = hmac.new("s3cr3t-ключ".encode(), b"CUST001", hashlib.sha256).hexdigest()
    assert out["1"].cust == expected and out["2"].cust is None
    assert out["1"].name == "Ada Lovelace" and out["1"].contact == "+44 1" and out["2"].contact == "none"
    assert out["1"].born == out["2"].born == dt.date(1815, 12, 10)
    assert out["1"].score == 9.5 and out["2"].score is None
    # without its key the hash step refuses before any row is read, naming the variable, never a value
    monkeypatch.delenv("TEST_HASH_KEY")
    with pytest.raises(SettingsError, match="^the hash cleaning step needs its secret key in the environment "
                                            "variable TEST_HASH_KEY$"):
        clean(spec.cleaning)


def test_hash_without_its_key_is_a_configuration_error(monkeypatch):
    from lakehouse.settings import SettingsError

    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    spec = dataset(cleaning=[{"hash": {"columns": ["v"], "key_env": "NO_SUCH_KEY"}}])
    with pytest.raises(SettingsError, match="NO_SUCH_KEY"):
        clean(spec.cleaning)


def test_standardize_column_names_runs_before_the_typed_cast(spark):
    spec = dataset(cleaning=[{"standardize_column_names": True}], schema={"order_id": "string", "total_eur": "int"},
                   keys=("order_id",))
    raw = spark.createDataFrame([("A1", "7")], "`Order ID` string, `TotalEUR` string")
    out = raw.transform(conform(spec)).collect()[0]
    assert (out.order_id, out.total_eur) == ("A1", 7)


def test_dedup_step_marks_all_but_the_latest_per_group(spark):
    spec = dataset(cleaning=[{"dedup": {"columns": ["v"], "keep_latest_by": "seq"}}],
                   schema={"id": "string", "v": "string", "seq": "int"})
    rows = [("a", "ü", 1), ("b", "ü", 3), ("c", "ü", None), ("d", None, 1), ("e", None, 2), ("f", "", 1),
            ("g", "x", 5), ("h", "x", 5)]
    df = spark.createDataFrame(rows, "id string, v string, seq int")
    out = {r.id: r._superseded for r in df.transform(clean(spec.cleaning)).collect()}
    # latest seq wins, a null seq is oldest, null groups are not deduplicated, the empty string is a value
    assert {k: v for k, v in out.items() if k not in "gh"} == {
        "a": True, "b": False, "c": True, "d": False, "e": False, "f": False}
    # a tie is broken by content, the same way whatever the input order
    assert sorted([out["g"], out["h"]]) == [False, True]
    again = {r.id: r._superseded for r in spark.createDataFrame(list(reversed(rows)), "id string, v string, seq int")
             .repartition(3).transform(clean(spec.cleaning)).collect()}
    assert (again["g"], again["h"]) == (out["g"], out["h"])
    with pytest.raises(ValueError, match="cleaning: dedup names unknown column"):
        dataset(cleaning=[{"dedup": {"columns": ["nope"], "keep_latest_by": "v"}}])


@pytest.mark.parametrize("limit", [0, 10, None])
def test_one_row_per_key_is_the_latest_whichever_way_it_is_found(spark, monkeypatch, tmp_path, limit):
    """0: repeated keys counted, then every row ranked; 10: only the rows of repeated keys ranked; None: a small
    frame, every row ranked at once."""
    from lakehouse import frames
    from lakehouse.pipeline import silver

    if limit is not None:  # as a large frame
        monkeypatch.setattr(frames, "SMALL_FRAME_BYTES", -1)
        monkeypatch.setattr(silver, "BROADCAST_REPEATED_KEYS", limit)
    spec = m.DatasetSpec.model_validate({
        "name": "t", "source": {"format": "csv", "path": "raw/t"}, "keys": ["id"], "sequence_by": "seq",
        "schema": {"id": "string", "seq": "int", "v": "string"}})
    rows = [("a", 1, "old", dt.date(2024, 1, 1)), ("a", 2, "new", dt.date(2024, 1, 1)),
            ("b", None, "late file", dt.date(2024, 1, 2)), ("b", None, "early file", dt.date(2024, 1, 1)),
            ("c", 5, "only", dt.date(2024, 1, 2))]
    # read from files, as the pipeline's frames are (Spark estimates a file scan by its size)
    (spark.createDataFrame(rows, "id string, seq int, v string, _source_date date")
     .withColumn("_source_file", F.lit("f")).withColumn(silver.ROW_HASH, F.xxhash64("v"))
     .write.parquet(str(tmp_path / "valid")))
    valid = spark.read.parquet(str(tmp_path / "valid"))
    assert frames.is_small(valid) == (limit is None)  # the path the case names is the one taken
    got = sorted((r.id, r.v) for r in silver.one_per_key(spec, valid).collect())
    assert got == [("a", "new"), ("b", "late file"), ("c", "only")]
    unique = valid.where("id = 'c'")
    assert [r.v for r in silver.one_per_key(spec, unique).collect()] == ["only"]


def test_messages_speak_the_users_words_and_every_check_names_its_columns(spark):
    from lakehouse.specs.dataset_checks import Batch, judge

    spec = dataset(schema={"id": "string", "price": "double", "qty": "int", "code": "string", "cost": "double"},
                   checks=[{"check": "range", "column": "price", "min": 0, "inclusive": False},
                           {"check": "range", "column": "qty", "min": 1, "max": 1000},
                           {"check": "length", "column": "code", "max": 5},
                           {"check": "compare", "left": "cost", "op": "<=", "right": "price * 2"},
                           {"check": "expression", "expression": "qty > 0 OR `code` = 'RETURN'"}])
    df = spark.createDataFrame([("1", -5.0, 0, "ABCDEFG", 30.0)], "id string, price double, qty int, code string, "
                                                                  "cost double")
    (row,) = df.transform(evaluate(spec)).collect()
    got = {(e["check"], e["column"]): e["message"] for e in row[ERRORS]}
    assert got == {
        ("range", "price"): "price=-5.0 must be > 0",
        ("range", "qty"): "qty=0 must be between 1 and 1000",
        ("length", "code"): "code=ABCDEFG must be at most 5 characters long",
        ("compare", "price,cost"): "cost <= price * 2 does not hold",
        ("expression", "qty,code"): "qty > 0 OR `code` = 'RETURN' does not hold",
    }
    context = Batch(valid=0, batch=0, rows_read=0, aggregate=None, raw_columns=[],
                                  run_date=dt.date(2024, 1, 1), previous_rows=None)
    result = judge(m.RowCount(check="row_count", min=1), context)
    assert (result.passed, result.threshold) == (False, "must be at least 1 row")
