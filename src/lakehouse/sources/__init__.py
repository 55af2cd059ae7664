"""The raw zone: listing (files), probing (probe) and reading (reader) raw files, by format (formats)."""

from lakehouse.sources import builtin_formats  # registers csv, json and parquet

__all__ = ["builtin_formats"]
