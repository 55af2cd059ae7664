"""The built-in cleaning steps, one module per family; importing this package registers them (specs.steps)."""

from lakehouse.specs.cleaning_steps import columns, privacy, rows, text

__all__ = ["columns", "privacy", "rows", "text"]
