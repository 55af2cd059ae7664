"""Delta table engines behind one seam: `jvm` (delta-spark) and `rust` (delta-rs)."""

from lakehouse.tables.engine import MergeResult, TableEngine, select_engine

__all__ = ["MergeResult", "TableEngine", "select_engine"]
