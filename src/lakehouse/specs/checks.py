"""Row checks: one rule per row (and column), failing rows quarantined (error) or flagged (warn).

Each check is one registered function (`specs.vocabulary.row_check`) in a family module of `specs/row_checks/`;
importing this module registers the built-in ones. The models of the few built-in checks that validate-config treats
apart (bounds and values typed against the column, a Java regex) are named here; `vocabulary.model(name)` gives
any check's model.
"""

from __future__ import annotations

from typing import Any

from lakehouse.specs import row_checks
from lakehouse.specs.row_checks.relations import Reference
from lakehouse.specs.vocabulary import OneOrMoreColumns, RowCheck, RowCheckBase, model

Range: type[Any] = model("range")
InSet: type[Any] = model("in_set")
NotInSet: type[Any] = model("not_in_set")
Regex: type[Any] = model("regex")
Unique: type[Any] = model("unique")

__all__ = ["InSet", "NotInSet", "OneOrMoreColumns", "Range", "Reference", "Regex", "RowCheck", "RowCheckBase",
           "Unique", "row_checks"]
