"""The base of every spec model: unknown fields forbidden, frozen, and (top-level specs) located in their file."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
)

from lakehouse.specs.types import TypeParseError, parse_column

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _column_type(text: str) -> str:
    try:
        parse_column(str(text))
    except TypeParseError as exc:
        raise ValueError(str(exc)) from exc
    return text


ColumnType = Annotated[str, AfterValidator(_column_type)]
Identifier = Annotated[str, Field(pattern=IDENT)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def require_a_bound(spec: Any, kind: str) -> None:
    """A check with optional `min` and `max` needs at least one of them."""
    if spec.min is None and spec.max is None:
        raise ValueError(f"{kind} needs 'min', 'max' or both")


class Located(Spec):
    """A top-level spec that knows the file it came from and the line of each field."""

    _source: str = PrivateAttr(default="<memory>")
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)

    def location(self, path: tuple[Any, ...]) -> str:
        parts = tuple(path)
        while parts and parts not in self._lines:
            parts = parts[:-1]
        return f"{self._source}:{self._lines.get(parts, 1)}"
