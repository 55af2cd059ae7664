"""Row checks that look at other rows: a key that must exist elsewhere, a combination that must be unique."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from lakehouse.specs.base import IDENT
from lakehouse.specs.row_checks.common import value_message
from lakehouse.specs.vocabulary import CheckContext, Failing, OneOrMoreColumns, row_check
from lakehouse.sql import all_of, ident, literal


def ref_column(check_index: int, column: str) -> str:
    """The helper column `rules.checks.attach_references` fills with the looked-up key (null: not found)."""
    return f"_ref_{check_index}_{column}"


class Reference(OneOrMoreColumns):
    """`exists_in`'s `ref`: '<dataset>.<column>' or 'batch.<column>'."""

    ref: str = Field(description="'<dataset>.<column>' (that dataset's silver table) or 'batch.<column>' (this "
                                 "run's rows of the dataset being checked)")

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        parts = v.removeprefix("silver.").split(".")
        if len(parts) != 2 or not all(re.match(IDENT, p) for p in parts):
            raise ValueError("ref must look like '<dataset>.<column>' (e.g. 'products.product_id') or "
                             "'batch.<column>'")
        return v

    @property
    def in_batch_only(self) -> bool:
        return self.ref.split(".")[0] == "batch"

    @property
    def ref_dataset(self) -> str | None:
        """The dataset whose silver table is looked up; None for 'batch.<column>'."""
        return None if self.in_batch_only else self.ref.removeprefix("silver.").split(".")[0]

    @property
    def ref_column(self) -> str:
        return self.ref.removeprefix("silver.").split(".")[1]


@row_check("exists_in", fails_when="`ref: dataset.column`: value absent from that dataset's silver table (which is "
                                   "loaded first; a missing table fails every non-null value); naming the dataset "
                                   "being checked looks in its silver table and in this run's rows; "
                                   "`ref: batch.column`: value absent from this run's rows of the dataset (any row, "
                                   "valid or not)",
           examples=["{check: exists_in, column: product_id, ref: products.product_id}",
                     "{check: exists_in, column: original_txn, ref: batch.transaction_id}"], base=Reference)
def exists_in(column: str, ctx: CheckContext, *, ref: str) -> Failing:
    found = ident(ref_column(ctx.index, column))
    return Failing(f"{ident(column)} IS NOT NULL AND {found} IS NULL", value_message(column, f"is not in {ref}"))


@row_check("unique", fails_when="the combination of `columns` occurs more than once in the batch (rows with a null "
                                "in it are not compared); every copy fails",
           examples=["{check: unique, columns: [store_id, receipt_no]}"])
def unique(ctx: CheckContext, *, columns: Annotated[list[str], Field(
        min_length=1, description="the combination that must be unique in the batch")]) -> Failing:
    cols = ", ".join(ident(c) for c in columns)
    complete = all_of(*[f"{ident(c)} IS NOT NULL" for c in columns])
    label = ", ".join(columns)
    message = (value_message(columns[0], "is not unique in the batch") if len(columns) == 1
               else literal(f"({label}) is not unique in the batch"))
    day = "_partition_date, " if ctx.by_day else ""
    return Failing(all_of(complete, f"count(1) OVER (PARTITION BY {day}{cols}) > 1"), message, label)
