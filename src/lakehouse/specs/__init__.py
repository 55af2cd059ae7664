"""Declarative specs: YAML under conf/ parsed once into typed models before any Spark work starts."""

from lakehouse.specs.loader import Catalog, SpecError, load_catalog

__all__ = ["Catalog", "SpecError", "load_catalog"]
