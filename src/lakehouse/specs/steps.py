"""Cleaning steps: what happens to the rows between the typed cast and the checks, in order. Each step says
once which columns it leaves (`leaves`), and the dataset's column list after cleaning follows from that."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
)

from lakehouse.specs.base import ColumnType, Spec


class Step(Spec):
    step: str

    def leaves(self, columns: list[str]) -> list[str]:
        """The columns after this step, given the columns before it (most steps change values, not columns)."""
        return columns


class ParseSpec(Spec):
    type: Literal["date", "timestamp"] = "timestamp"
    formats: list[str] = Field(min_length=1)


class HashSpec(Spec):
    columns: list[str] = Field(min_length=1)
    key_env: str = Field(default="LAKEHOUSE_HASH_KEY", pattern=r"^[A-Z_][A-Z0-9_]*$",
                         description="environment variable holding the secret key (never the key itself)")


class Trim(Step):
    step: Literal["trim"]
    trim: list[str]


class Upper(Step):
    step: Literal["upper"]
    upper: list[str]


class Lower(Step):
    step: Literal["lower"]
    lower: list[str]


class Title(Step):
    step: Literal["title"]
    title: list[str]


class StandardizeColumnNames(Step):
    step: Literal["standardize_column_names"]
    standardize_column_names: bool = True


class Cast(Step):
    step: Literal["cast"]
    cast: dict[str, ColumnType]


class Coalesce(Step):
    step: Literal["coalesce"]
    coalesce: dict[str, list[str]] = Field(description="target: [SQL expressions tried in order]")

    def leaves(self, columns: list[str]) -> list[str]:
        return columns + [c for c in self.coalesce if c not in columns]


class ParseDates(Step):
    step: Literal["parse_dates"]
    parse_dates: dict[str, ParseSpec]


class MaskCard(Step):
    step: Literal["mask_card"]
    mask_card: list[str]


class Hash(Step):
    step: Literal["hash"]
    hash: HashSpec


class DedupSpec(Spec):
    columns: list[str] = Field(min_length=1, description="rows with equal values here are duplicates")
    keep_latest_by: str = Field(description="the row with the greatest value is kept (nulls count as oldest)")


class Dedup(Step):
    step: Literal["dedup"]
    dedup: DedupSpec


class FillNull(Step):
    step: Literal["fill_null"]
    fill_null: dict[str, Any]


class Derive(Step):
    step: Literal["derive"]
    derive: dict[str, str]

    def leaves(self, columns: list[str]) -> list[str]:
        return columns + [c for c in self.derive if c not in columns]


class Rename(Step):
    step: Literal["rename"]
    rename: dict[str, str]

    def leaves(self, columns: list[str]) -> list[str]:
        return [self.rename.get(c, c) for c in columns]


class Drop(Step):
    step: Literal["drop"]
    drop: list[str]

    def leaves(self, columns: list[str]) -> list[str]:
        return [c for c in columns if c not in self.drop]


class RegexReplace(Step):
    step: Literal["regex_replace"]
    regex_replace: dict[str, tuple[str, str]] = Field(description="column: [pattern, replacement]")


class MaskEmail(Step):
    step: Literal["mask_email"]
    mask_email: list[str]


CleaningStep = Annotated[
    Trim | Upper | Lower | Title | StandardizeColumnNames | FillNull | Derive | Rename | Drop | RegexReplace | Cast
    | Coalesce | ParseDates | MaskEmail | MaskCard | Hash | Dedup,
    Field(discriminator="step"),
]


def _tag_step(value: Any) -> Any:
    """`- trim: [a, b]` becomes {'step': 'trim', 'trim': [a, b]} so the step name discriminates the union."""
    if isinstance(value, dict) and "step" not in value:
        if len(value) != 1:
            return {"step": "/".join(map(str, value)) or "(empty)", **value}
        (name,) = value
        return {"step": name, **value}
    return value
