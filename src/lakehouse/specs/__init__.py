"""Declarative specs: YAML under conf/ parsed once into typed models before any Spark work starts."""

from lakehouse.errors import SpecError
from lakehouse.specs.loader import Catalog, load_catalog

__all__ = ["Catalog", "SpecError", "load_catalog"]
