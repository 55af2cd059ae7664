"""Delta table engines behind one seam: `jvm` (delta-spark) and `rust` (delta-rs)."""

from lakehouse.tables.choose import jvm_delta_available, select_engine
from lakehouse.tables.engine import MergeResult, TableEngine

__all__ = ["MergeResult", "TableEngine", "jvm_delta_available", "select_engine"]
