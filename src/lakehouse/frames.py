"""Small DataFrame helpers shared by the stages."""

from __future__ import annotations

from pyspark.sql import DataFrame, Row


def one_row(df: DataFrame) -> Row:
    """The row of a query that returns exactly one (a global aggregate): an error if there is none."""
    row = df.first()
    if row is None:
        raise RuntimeError("an aggregate query returned no row")
    return row
