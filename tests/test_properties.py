"""Property: for any rows and any rule set, every row is either valid or quarantined, never both, never lost."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from lakehouse.rules.checks import ERRORS, evaluate, has_error
from lakehouse.rules.conform import conform
from lakehouse.specs import models as m

TEXT = st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["", " ", "12", "-3", "x@y.io", "Ünï", "1e3"]))
NUMBER = st.one_of(st.none(), st.sampled_from(["", "0", "7", "10", "11", "-3", "abc", "2147483648"]))
ROW = st.tuples(TEXT, TEXT, NUMBER)

CHECKS = st.sampled_from([
    {"check": "not_null", "column": "a"},
    {"check": "not_empty", "columns": ["a", "b"], "criticality": "warn"},
    {"check": "range", "column": "n", "min": 0, "max": 10},
    {"check": "range", "column": "n", "min": 0, "inclusive": False, "criticality": "warn"},
    {"check": "in_set", "column": "b", "values": ["", "12", "x@y.io"]},
    {"check": "not_in_set", "column": "a", "values": ["-3"]},
    {"check": "regex", "column": "a", "pattern": "^[0-9]+$", "filter": "b IS NOT NULL"},
    {"check": "email", "column": "b", "criticality": "warn"},
    {"check": "length", "column": "a", "max": 3},
    {"check": "unique", "columns": ["a"]},
    {"check": "castable", "column": "b", "type": "int"},
    {"check": "compare", "left": "length(a)", "op": "<=", "right": "length(b)"},
    {"check": "expression", "expression": "n IS NULL OR n < 5", "criticality": "warn"},
])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=25), checks=st.lists(CHECKS, max_size=6))
def test_every_row_is_valid_xor_quarantined(spark, rows, checks):
    spec = m.DatasetSpec.model_validate({
        "name": "p", "source": {"format": "csv", "path": "raw/p"}, "keys": ["id"],
        "schema": {"id": "int", "a": "string", "b": "string", "n": "int"}, "checks": checks})
    data = [(i, a, b, n) for i, (a, b, n) in enumerate(rows)]
    raw = spark.createDataFrame(data, "id int, a string, b string, n string")
    checked = raw.transform(conform(spec)).transform(evaluate(spec)).cache()
    quarantined = {r.id for r in checked.where(has_error()).select("id").collect()}
    valid = {r.id for r in checked.where(~has_error()).select("id").collect()}
    assert valid | quarantined == set(range(len(data)))
    assert not valid & quarantined
    assert checked.count() == len(data)  # no row duplicated or dropped by the reference/unique machinery
    # an independent oracle for two rules: a non-number in n is a type error; not_null(a) and range(n, 0..10)
    for i, (a, _, n) in enumerate(rows):
        number = int(n) if n not in (None, "", "abc") and int(n) < 2**31 else None
        if n not in (None, "") and number is None:
            assert i in quarantined, (n, "type_mismatch")
        if {"check": "not_null", "column": "a"} in checks and a is None:
            assert i in quarantined
        if {"check": "range", "column": "n", "min": 0, "max": 10} in checks and number is not None \
                and not 0 <= number <= 10:
            assert i in quarantined
    warn_only = {r.id for r in checked.where(~has_error() & (F.size(ERRORS) > 0)).collect()}
    assert warn_only <= valid  # warn-level failures never quarantine
    checked.unpersist()
