"""The row-check vocabulary: every `check:` a dataset spec may name, registered by one decorated function.

    @row_check("length", fails_when="text length in characters outside the bounds, inclusive",
               examples=["{check: length, column: code, min: 2, max: 8}"])
    def length(column: str, ctx: CheckContext, *, min: int | None = None, max: int | None = None) -> Failing:
        ...SQL text that is true on a failing row, and the message...

The function's keyword-only arguments become the spec model (types, defaults and pydantic `Field`s as written;
the common arguments `name`, `criticality`, `filter` and `message` come with every check). A first argument named
`column` makes it a column check: the YAML takes `column: c` or `columns: [a, b]`, and the function is called once
per column. Otherwise it is called once per check (`unique`, `compare`). What it returns is SQL text, so it runs
in the one select that evaluates every check of a dataset (`rules.checks.evaluate`).

From this registry come the spec union the loader validates (`RowCheck`: an unknown `check:` is named with a
did-you-mean among the registered names), the compiled SQL (`to_sql`), and docs/rules.md's table (`table`). A
new check is one function in one of the family modules (`specs/row_checks/`) or in any module imported before
the specs are loaded, plus its test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from lakehouse.specs.base import Spec
from lakehouse.specs.registry import Registry, arguments_text, check_names, model_of, names_text, positional
from lakehouse.sql import all_of, literal


class RowCheckBase(Spec):
    """The arguments every row check takes."""

    check: str
    name: str | None = None
    criticality: Literal["error", "warn"] = "error"
    filter: str | None = Field(default=None, description="SQL condition: the check applies only where it holds")
    message: str | None = None


class OneOrMoreColumns(RowCheckBase):
    """A column check: `column: c` or `columns: [a, b]`, one failure per column."""

    column: str | None = None
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if bool(self.column) == bool(self.columns):
            raise ValueError("give exactly one of 'column' or 'columns'")
        return self

    @property
    def targets(self) -> list[str]:
        return [self.column] if self.column else list(self.columns or [])


@dataclass(frozen=True)
class CheckContext:
    """What a check's SQL may depend on besides its arguments: the instant time-relative checks compare with (the
    run's start), the check's position among its dataset's checks (names helper columns), and whether the rows
    carry their run date (`_partition_date`: a batch of several days, judged day by day)."""

    now: dt.datetime
    index: int = 0
    by_day: bool = False


@dataclass(frozen=True)
class Failing:
    """A check's SQL: `fails` holds on a failing row, `message` is a string expression; `column` names what a
    check of the whole row looked at (column checks are labelled with their column)."""

    fails: str
    message: str
    column: str | None = None


@dataclass(frozen=True)
class CompiledCheck:
    """One check on one column, as SQL text: `fails` is true on a failing row, `message` a string expression."""

    name: str
    column: str | None
    criticality: str
    fails: str
    message: str

    def failed(self) -> str:
        return f"coalesce({self.fails}, false)"


# how a check's verdict moves as time passes: `loosens` (a value that passed still passes later), `tightens` (a
# value that passed may fail later); None: it does not depend on the time of the run
Time = Literal["loosens", "tightens"] | None


@dataclass
class CheckKind:
    """One registered check: its names (the first is the model's; the others are aliases), its model, the
    function that compiles it, and its docs entry."""

    names: tuple[str, ...]
    model: type[RowCheckBase]
    compile: Callable[..., Failing]
    per_column: bool
    arguments: list[str]
    fails_when: str
    examples: list[str]
    sql: tuple[str, ...] = ()  # arguments that are SQL text (parsed on their own, resolved against the schema)
    time: Time = None
    # the column types it applies to, as Spark's type names (`date`, `string`...), with the words that name them;
    # validate-config names a column of another type. None: any type
    needs: tuple[str, tuple[str, ...]] | None = None
    module: str = ""

    def args(self, check: RowCheckBase) -> dict[str, Any]:
        return {name: getattr(check, name) for name in self.arguments}


REGISTRY: Registry[CheckKind] = Registry("row check")


def row_check(*names: str, fails_when: str, examples: Sequence[str], sql: Sequence[str] = (), time: Time = None,
              needs: tuple[str, tuple[str, ...]] | None = None, base: type[RowCheckBase] | None = None
              ) -> Callable[[Callable[..., Failing]], Callable[..., Failing]]:
    """Register the decorated function as the row check `names[0]` (the other names are aliases). Its keyword-only
    arguments become the check's spec model; `base` (a subclass of `OneOrMoreColumns` or `RowCheckBase`) adds
    fields with validators, or properties, the function's arguments cannot state. `fails_when` and `examples`
    (YAML flow mappings) are its docs entry; `sql` names the arguments that are SQL text; `time` says how the
    verdict moves as time passes (see `Time`); `needs` the column types it applies to, e.g.
    `("a string column", ("string",))`."""
    check_names(names, "row check")

    def register(fn: Callable[..., Failing]) -> Callable[..., Failing]:
        given = positional(fn)
        if given not in (["column", "ctx"], ["ctx"]):
            raise TypeError(f"{fn.__qualname__}: a row check takes (column, ctx, *, arguments...) or "
                            f"(ctx, *, arguments...), not ({', '.join(given)})")
        per_column = given[0] == "column"
        parent = base or (OneOrMoreColumns if per_column else RowCheckBase)
        model, arguments = model_of(fn, names, parent, f"The `{names[0]}` row check: fails when {fails_when}.")
        assert issubclass(model, RowCheckBase)
        REGISTRY.add(CheckKind(tuple(names), model, fn, per_column, arguments, fails_when, list(examples),
                               tuple(sql), time, needs, fn.__module__))
        return fn

    return register


kind_of = REGISTRY.kind_of
model = REGISTRY.model


# a row check of a spec: validated as the registered kind its `check:` names
RowCheck = REGISTRY.spec_type(RowCheckBase)


def to_sql(check: RowCheckBase, ctx: CheckContext) -> list[CompiledCheck]:
    """One row check as SQL, one CompiledCheck per column it applies to; `filter` and `message` applied."""
    kind = kind_of(check)
    name = check.name or check.check
    args = kind.args(check)

    def make(column: str | None, failing: Failing) -> CompiledCheck:
        message = literal(check.message) if check.message else failing.message
        fails = all_of(check.filter, failing.fails) if check.filter else failing.fails
        return CompiledCheck(name, column, check.criticality, fails, message)

    if kind.per_column:
        assert isinstance(check, OneOrMoreColumns)
        return [make(c, kind.compile(c, ctx, **args)) for c in check.targets]
    failing = kind.compile(ctx, **args)
    return [make(failing.column, failing)]


def sql_fragments(check: RowCheckBase) -> list[tuple[str, str]]:
    """(argument, text) of every SQL fragment of one row check as written in the YAML."""
    out = [("filter", check.filter)] if check.filter else []
    return out + [(name, getattr(check, name)) for name in kind_of(check).sql if getattr(check, name)]


def table() -> str:
    """docs/rules.md's table of row checks, one row per registered kind, by name."""
    rows = ["| check | arguments | fails when | example |", "| --- | --- | --- | --- |"]
    for kind in REGISTRY.unique():
        examples = ", ".join(f"`{e}`" for e in kind.examples)
        rows.append(f"| {names_text(kind)} | {arguments_text(kind, ['column(s)'] if kind.per_column else [])} | "
                    f"{kind.fails_when} | {examples} |")
    return "\n".join(rows)


__all__ = ["REGISTRY", "CheckContext", "CheckKind", "CompiledCheck", "Failing", "OneOrMoreColumns", "RowCheck",
           "RowCheckBase", "kind_of", "model", "row_check", "sql_fragments", "table", "to_sql"]
