"""Where a dataset's raw files are: format, folder, partition layout, file name patterns, reader options."""

from __future__ import annotations

import re
from typing import Any

from pydantic import (
    Field,
    field_validator,
)

from lakehouse.specs.base import IDENT, Spec

DATE_PARTS = ("date", "yyyy", "mm", "dd")
# the raw formats a spec may name: the built-in ones, and those registered with lakehouse.sources.formats
FORMAT_NAMES = {"csv", "json", "parquet"}


class SourceSpec(Spec):
    format: str = Field(description="a raw format's name: csv, json, parquet, or one registered with "
                                    "lakehouse.sources.formats")
    path: str = Field(description="raw folder, relative to the lake root unless it has a scheme or is absolute")
    layout: str = Field(default="date={date}", description="partition folders of one day, e.g. 'date={date}' or "
                                                           "'year={yyyy}/month={mm}/day={dd}/hour={hour}'")
    files: list[str] | None = Field(default=None, min_length=1,
                                    description="name patterns of data files (default: by format)")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v not in FORMAT_NAMES:
            names = [repr(n) for n in sorted(FORMAT_NAMES)]
            raise ValueError(f"must be {', '.join(names[:-1])} or {names[-1]}, not {v!r}")
        return v

    @field_validator("layout")
    @classmethod
    def _layout(cls, v: str) -> str:
        names = re.findall(r"{([^}]*)}", v)
        dates = [n for n in names if n in DATE_PARTS]
        if "date" not in dates and not {"yyyy", "mm", "dd"} <= set(dates):
            raise ValueError("layout must place the day with {date} or {yyyy}/{mm}/{dd}, e.g. 'date={date}'")
        bad = [n for n in names if not re.match(IDENT, n)]
        if bad:
            raise ValueError(f"layout placeholder {{{bad[0]}}} is not a name (letters, digits, underscore)")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"layout names {{{repeated[0]}}} twice")
        if v.startswith("/") or "//" in v or ".." in v.split("/"):
            raise ValueError("layout is a relative folder path below the source path, e.g. 'date={date}'")
        return v.rstrip("/")

    @property
    def level_columns(self) -> list[str]:
        """Names of the layout's extra levels (`{hour}`, `{region}`), read as string columns."""
        return [n for n in re.findall(r"{(\w+)}", self.layout) if n not in DATE_PARTS]
