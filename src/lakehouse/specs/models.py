"""Typed models of the YAML specs, one module per kind, gathered here so that `models.X` names any of them:

    base            Spec, Located (a top-level spec that knows its file and lines), column types
    source          SourceSpec: format, folder, layout, file patterns
    checks          row checks (RowCheck: the union of every kind)
    dataset_checks  dataset checks (DatasetCheck)
    steps           cleaning steps (CleaningStep)
    dataset         DatasetSpec
    aggregation     AggregationSpec

Every model forbids unknown fields, so a misspelled key is an error with its file and line, not a silent default.
"""

from __future__ import annotations

from lakehouse.specs.aggregation import (
    AggregationSpec,
    AggregationTarget,
    Join,
)
from lakehouse.specs.base import (
    IDENT,
    ColumnType,
    Identifier,
    Located,
    Spec,
)
from lakehouse.specs.checks import (
    InSet,
    NotInSet,
    OneOrMoreColumns,
    Range,
    Reference,
    Regex,
    RowCheck,
    RowCheckBase,
    Unique,
)
from lakehouse.specs.dataset import (
    DatasetSpec,
    DatasetTarget,
    HistorySpec,
)
from lakehouse.specs.dataset_checks import (
    Completeness,
    DatasetCheck,
    DatasetCheckBase,
    Freshness,
    RequiredColumns,
    RowCount,
    RowCountChange,
    Statistic,
    Uniqueness,
)
from lakehouse.specs.source import (
    DATE_PARTS,
    SourceSpec,
)
from lakehouse.specs.steps import (
    CleaningStep,
    StepBase,
)

__all__ = [
    "AggregationSpec",
    "AggregationTarget",
    "CleaningStep",
    "ColumnType",
    "Completeness",
    "DATE_PARTS",
    "DatasetCheck",
    "DatasetCheckBase",
    "DatasetSpec",
    "DatasetTarget",
    "HistorySpec",
    "Freshness",
    "IDENT",
    "Identifier",
    "InSet",
    "NotInSet",
    "Reference",
    "Join",
    "Located",
    "OneOrMoreColumns",
    "Range",
    "Regex",
    "RequiredColumns",
    "RowCheck",
    "RowCheckBase",
    "RowCount",
    "RowCountChange",
    "SourceSpec",
    "Spec",
    "StepBase",
    "Statistic",
    "Unique",
    "Uniqueness",
]
