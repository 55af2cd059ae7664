"""A dataset spec: source, schema, cleaning, checks, dataset checks and the silver target."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    field_validator,
    model_validator,
)
from pyspark.sql import types as T

from lakehouse.specs.base import IDENT, ColumnType, Identifier, Located, Spec
from lakehouse.specs.cases import RuleTest
from lakehouse.specs.checks import Reference, RowCheck
from lakehouse.specs.dataset_checks import DatasetCheck
from lakehouse.specs.source import SourceSpec
from lakehouse.specs.steps import (
    CleaningStep,
    Dedup,
    Hash,
    MaskCard,
    MaskEmail,
    StandardizeColumnNames,
    _tag_step,
)
from lakehouse.specs.types import parse_column


class DatasetTarget(Spec):
    partition_by: list[str] = Field(default_factory=list)
    merge_update_when: str | None = Field(
        default=None, description="extra SQL condition (aliases s, t) for updating a matched silver row")


class DatasetSpec(Located):
    name: str = Field(pattern=IDENT)
    description: str | None = None
    source: SourceSpec
    columns: dict[Identifier, ColumnType] = Field(alias="schema", min_length=1)
    keys: list[str] = Field(min_length=1)
    sequence_by: str | None = None
    duplicates: Literal["keep_latest", "fail"] = Field(
        default="keep_latest", description="several rows with one key in a batch: keep the latest, or fail")
    on_new_columns: Literal["fail", "add", "ignore"] = "add"
    on_type_mismatch: Literal["quarantine", "rescue"] = Field(
        default="quarantine", description="a value that does not fit its declared type: quarantine the row, or keep "
        "it in silver with the column null and the value in `_rescued_data` (a warning)")
    on_bad_file: Literal["reject", "fail"] = Field(
        default="reject", description="a raw file that cannot be read: set it aside (the rest loads) or fail")
    cleaning: list[Annotated[CleaningStep, Field()]] = Field(default_factory=list)
    checks: list[RowCheck] = Field(default_factory=list)
    dataset_checks: list[DatasetCheck] = Field(default_factory=list)
    target: DatasetTarget = Field(default_factory=DatasetTarget)
    tests: list[RuleTest] = Field(default_factory=list, description="rule tests run by `lakehouse test-specs`")

    @field_validator("cleaning", mode="before")
    @classmethod
    def _tag_steps(cls, v: Any) -> Any:
        return [_tag_step(item) for item in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _known_columns(self) -> Self:
        known = set(self.output_columns())
        batch_refs = [c.ref_column for c in self.checks if isinstance(c, Reference) and c.in_batch_only]
        dedup = [c for s in self.cleaning if isinstance(s, Dedup) for c in [*s.dedup.columns, s.dedup.keep_latest_by]
                 if c not in known and c not in self.columns]
        for where, cols in (("keys", self.keys), ("target.partition_by", self.target.partition_by),
                            ("sequence_by", [self.sequence_by] if self.sequence_by else []),
                            ("checks: exists_in ref batch", batch_refs), ("cleaning: dedup", dedup)):
            missing = [c for c in cols if c not in known]
            if missing:
                raise ValueError(f"{where} names unknown column(s) {missing}; columns after cleaning: "
                                 f"{sorted(known)}")
        return self

    def source_schema(self) -> T.StructType:
        """The typed schema the raw columns are cast to before cleaning."""
        fields = []
        for col, text in self.columns.items():
            dtype, nullable = parse_column(text)
            fields.append(T.StructField(col, dtype, nullable))
        return T.StructType(fields)

    def required_columns(self) -> list[str]:
        return [f.name for f in self.source_schema().fields if not f.nullable]

    def output_columns(self) -> list[str]:
        """Column names after the cleaning steps (derive adds, rename renames, drop removes)."""
        cols = list(self.columns)
        for step in self.cleaning:
            cols = step.leaves(cols)
        return cols

    def has_masking(self) -> bool:
        return any(isinstance(s, MaskEmail | MaskCard | Hash) for s in self.cleaning)

    def standardizes_names(self) -> bool:
        return any(isinstance(s, StandardizeColumnNames) and s.standardize_column_names for s in self.cleaning)

    def hash_key_envs(self) -> list[str]:
        return [s.hash.key_env for s in self.cleaning if isinstance(s, Hash)]

    def references(self) -> list[str]:
        return [ref for ref, _ in self.reference_locations()]

    def reference_locations(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(c.ref_dataset, ("checks", i, "ref")) for i, c in enumerate(self.checks)
                if isinstance(c, Reference) and c.ref_dataset is not None]
