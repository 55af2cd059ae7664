"""The built-in row checks, one module per family; importing this package registers them (specs.vocabulary)."""

from lakehouse.specs.row_checks import expressions, relations, text, time, values

__all__ = ["expressions", "relations", "text", "time", "values"]
