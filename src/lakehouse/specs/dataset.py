"""A dataset spec: source, schema, cleaning, checks, dataset checks and the silver target."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    field_validator,
    model_validator,
)
from pyspark.sql import types as T

from lakehouse.specs import cleaning_steps  # noqa: F401 (importing it registers the built-in steps)
from lakehouse.specs.base import IDENT, ColumnType, Identifier, Located, Spec
from lakehouse.specs.cases import RuleTest
from lakehouse.specs.checks import Reference, RowCheck
from lakehouse.specs.dataset_checks import DatasetCheck
from lakehouse.specs.source import SourceSpec
from lakehouse.specs.steps import CleaningStep, columns_read, kind_of, tag_step
from lakehouse.specs.types import parse_column


class DatasetTarget(Spec):
    partition_by: list[str] = Field(default_factory=list)
    merge_update_when: str | None = Field(
        default=None, description="extra SQL condition (aliases s, t) for updating a matched silver row")


VALIDITY = ("valid_from", "valid_to", "is_current")


class HistorySpec(Spec):
    """`history: scd2`: silver keeps every version of a key, each valid from its change time until the next one."""

    type: Literal["scd2"] = "scd2"
    changed_at: str | None = Field(default=None, description="the column holding when a version took effect "
                                                             "(default: the run date the row was loaded for)")
    track: list[str] | None = Field(default=None, min_length=1, description="the columns whose change starts a new "
                                    "version (default: every column but the keys, changed_at and ignore)")
    ignore: list[str] = Field(default_factory=list, description="columns whose change starts no new version: a "
                              "version keeps the latest values they had while it was valid")


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
    history: HistorySpec | None = None

    @field_validator("history", mode="before")
    @classmethod
    def _history_word(cls, v: Any) -> Any:
        return {"type": v} if isinstance(v, str) else v

    @field_validator("cleaning", mode="before")
    @classmethod
    def _tag_steps(cls, v: Any) -> Any:
        return [tag_step(item) for item in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _known_columns(self) -> Self:
        known = set(self.output_columns())
        batch_refs = [c.ref_column for c in self.checks if isinstance(c, Reference) and c.in_batch_only]
        # what a step needs that running it on an empty frame does not check (validate-config does that)
        read = [(f"cleaning: {s.step}", [c for c in columns_read(s) if c not in known and c not in self.columns])
                for s in self.cleaning]
        history = self.history
        if history is not None:
            taken = [c for c in VALIDITY if c in known]
            if taken:
                raise ValueError(f"history: scd2 adds the columns {list(VALIDITY)}; the dataset has {taken} already")
            if self.target.partition_by:
                raise ValueError("history: scd2 keeps a key's versions together: target.partition_by is not allowed")
        for where, cols in (("history.changed_at", [history.changed_at] if history and history.changed_at else []),
                            ("history.track", history.track or [] if history else []),
                            ("history.ignore", history.ignore if history else []),
                            ("keys", self.keys), ("target.partition_by", self.target.partition_by),
                            ("sequence_by", [self.sequence_by] if self.sequence_by else []),
                            ("checks: exists_in ref batch", batch_refs), *read):
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

    @property
    def batch_keys(self) -> list[str]:
        """What makes two rows of a batch one row: the keys, and for a history table its change time column
        (the versions of a key in one batch are kept apart)."""
        changed = self.history.changed_at if self.history is not None else None
        return [*self.keys, changed] if changed else list(self.keys)

    @property
    def merge_keys(self) -> list[str]:
        """What identifies a silver row: the keys, and for a history table the version's change time."""
        return [*self.keys, "valid_from"] if self.history is not None else list(self.keys)

    def tracked_columns(self) -> list[str]:
        """A history table's columns whose change starts a new version."""
        history = self.history
        if history is None:
            return []
        if history.track is not None:
            return list(history.track)
        skip = {*self.keys, *history.ignore, *([history.changed_at] if history.changed_at else [])}
        return [c for c in self.output_columns() if c not in skip]

    def has_masking(self) -> bool:
        return any(kind_of(s).masks for s in self.cleaning)

    def standardizes_names(self) -> bool:
        return any(s.step == "standardize_column_names" and s.argument for s in self.cleaning)

    def secret_envs(self) -> list[str]:
        """The environment variables the cleaning steps read secrets from at run time (the hash step's key)."""
        return [secret(s.argument) for s in self.cleaning if (secret := kind_of(s).secret)]

    def references(self) -> list[str]:
        return [ref for ref, _ in self.reference_locations()]

    def reference_locations(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(c.ref_dataset, ("checks", i, "ref")) for i, c in enumerate(self.checks)
                if isinstance(c, Reference) and c.ref_dataset is not None]
