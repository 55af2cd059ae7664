"""`lakehouse read` without a JVM: the `--where` conditions (typed equality, text containment, a nested column
matched on its text) and `--columns`, read from a real Delta table; a bad condition is a usage error."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lakehouse.errors import UsageError
from lakehouse.tables.view import LakeView

ERRORS = pa.list_(pa.struct([("check", pa.string()), ("column", pa.string())]))


@pytest.fixture(scope="module")
def view(tmp_path_factory) -> LakeView:
    root = tmp_path_factory.mktemp("view")
    rows = pa.table({
        "source_file": ["raw/a.csv", "raw/by-hand.csv", "raw/b.csv", "raw/by-hand.csv"],
        "quantity": pa.array([1, -3, 7, 7], pa.int32()),
        "run_date": [dt.date(2026, 12, 3), dt.date(2026, 12, 4), dt.date(2026, 12, 4), dt.date(2026, 12, 4)],
        "errors": pa.array([[], [{"check": "range", "column": "quantity"}], [{"check": "required", "column": "x"}],
                            None], ERRORS)})
    write_deltalake(str(root / "quarantine" / "sales"), rows, partition_by=["run_date"])
    return LakeView(str(root))


def _read(view: LakeView, *conditions: str, columns: tuple[str, ...] = (), limit: int | None = None) -> list:
    return view.read("quarantine/sales", limit=limit, conditions=conditions, columns=columns).to_pylist()


def test_conditions_filter_rows_by_type_and_text(view):
    assert sorted(r["quantity"] for r in _read(view, "run_date=2026-12-04")) == [-3, 7, 7]
    assert sorted(r["quantity"] for r in _read(view, "quantity!=7")) == [-3, 1]
    assert [r["source_file"] for r in _read(view, "source_file~by-hand", "quantity=7")] == ["raw/by-hand.csv"]
    # a list of structs is matched on its text: the check's name
    assert [r["quantity"] for r in _read(view, "errors~range")] == [-3]
    assert _read(view, "errors~range", columns=("source_file",)) == [{"source_file": "raw/by-hand.csv"}]
    assert len(_read(view, "run_date=2026-12-04", limit=2)) == 2
    assert _read(view, "run_date=2026-12-05") == []


@pytest.mark.parametrize(("condition", "columns", "words"), [
    ("nosuch=1", (), "expected COLUMN=VALUE"),
    ("quantity", (), "expected COLUMN=VALUE"),
    ("=1", (), "expected COLUMN=VALUE"),
    ("quantity=many", (), "is not a int32 value"),
    ("run_date=2026-02-30", (), "is not a date32"),
    ("quantity=1", ("quantity", "nosuch"), "no column nosuch"),
])
def test_a_bad_condition_or_column_is_a_usage_error(view, condition, columns, words):
    with pytest.raises(UsageError, match=words):
        _read(view, condition, columns=columns)


@pytest.mark.parametrize("folder", ["lake", "lake#hash", "lake with space"])
def test_history_is_read_where_the_lake_path_holds_characters_urls_escape(tmp_path, folder):
    """A table's commits, newest first, whatever the lake's path holds (delta-rs lists none under a `#`; they are
    read from the log itself then), with a limit; the engine's history reads them the same way."""
    from lakehouse.tables.deltalog import delta_table
    from lakehouse.tables.engine import history_entries

    root = tmp_path / folder
    table = root / "silver" / "sales"
    write_deltalake(str(table), pa.table({"q": [1]}))
    write_deltalake(str(table), pa.table({"q": [2]}), mode="append")
    write_deltalake(str(table), pa.table({"q": [3]}), mode="overwrite")
    view = LakeView(str(root))
    entries = view.history("silver/sales")
    assert [(e.version, e.operation, e.parameters.get("mode")) for e in entries] == \
        [(2, "WRITE", "Overwrite"), (1, "WRITE", "Append"), (0, "WRITE", "ErrorIfExists")]
    assert entries[0].timestamp >= entries[2].timestamp > dt.datetime(2020, 1, 1)
    assert [e.version for e in view.history("silver/sales", limit=2)] == [2, 1]
    assert [e.version for e in history_entries(delta_table(str(table)), 1)] == [2]
