"""Spark batch lakehouse: raw files -> declarative rules -> Delta bronze/silver/gold tables."""

__version__ = "0.1.0"
