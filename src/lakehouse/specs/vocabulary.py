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
import functools
import inspect
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Self

from pydantic import Field, PlainValidator, SerializeAsAny, TypeAdapter, create_model, model_validator
from pydantic.fields import FieldInfo

from lakehouse.specs.base import Spec
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


@dataclass
class _Registry:
    kinds: dict[str, CheckKind] = field(default_factory=dict)  # every name, aliases included -> its kind
    version: int = 0

    def add(self, kind: CheckKind) -> None:
        taken = [n for n in kind.names if n in self.kinds and self.kinds[n].module != kind.module]
        if taken:
            raise ValueError(f"row check {taken[0]!r} is registered already (by {self.kinds[taken[0]].module})")
        for n in kind.names:
            self.kinds[n] = kind
        self.version += 1

    def remove(self, name: str) -> None:
        """Take the check `name` (and its aliases) out: a test's own check, registered for the test only."""
        kind = self.kinds[name]
        for n in kind.names:
            del self.kinds[n]
        self.version += 1

    def unique(self) -> list[CheckKind]:
        return list({id(k): k for k in self.kinds.values()}.values())


REGISTRY = _Registry()


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def row_check(*names: str, fails_when: str, examples: Sequence[str], sql: Sequence[str] = (), time: Time = None,
              needs: tuple[str, tuple[str, ...]] | None = None, base: type[RowCheckBase] | None = None
              ) -> Callable[[Callable[..., Failing]], Callable[..., Failing]]:
    """Register the decorated function as the row check `names[0]` (the other names are aliases). Its keyword-only
    arguments become the check's spec model; `base` (a subclass of `OneOrMoreColumns` or `RowCheckBase`) adds
    fields with validators, or properties, the function's arguments cannot state. `fails_when` and `examples`
    (YAML flow mappings) are its docs entry; `sql` names the arguments that are SQL text; `time` says how the
    verdict moves as time passes (see `Time`); `needs` the column types it applies to, e.g.
    `("a string column", ("string",))`."""
    if not names or not all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names):
        raise ValueError(f"row check names are lower_snake_case words: {names!r}")

    def register(fn: Callable[..., Failing]) -> Callable[..., Failing]:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
        positional = [p.name for p in signature.parameters.values() if p.kind != p.KEYWORD_ONLY]
        if positional not in (["column", "ctx"], ["ctx"]):
            raise TypeError(f"{fn.__qualname__}: a row check takes (column, ctx, *, arguments...) or "
                            f"(ctx, *, arguments...), not ({', '.join(positional)})")
        per_column = positional[0] == "column"
        parent = base or (OneOrMoreColumns if per_column else RowCheckBase)
        fields: dict[str, Any] = {"check": (Literal[names], ...)}
        arguments = []
        for p in signature.parameters.values():
            if p.kind != p.KEYWORD_ONLY:
                continue
            arguments.append(p.name)
            if p.name in parent.model_fields:
                continue  # declared by `base`, with its validators
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (hints.get(p.name, Any), default)
        model = create_model(_camel(names[0]), __base__=parent, __module__=fn.__module__, **fields)
        model.__doc__ = f"The `{names[0]}` row check: fails when {fails_when}."
        REGISTRY.add(CheckKind(tuple(names), model, fn, per_column, arguments, fails_when, list(examples),
                               tuple(sql), time, needs, fn.__module__))
        return fn

    return register


def kind_of(check: RowCheckBase) -> CheckKind:
    return REGISTRY.kinds[check.check]


def model(name: str) -> type[RowCheckBase]:
    """The spec model of the row check `name` (e.g. `model("range").model_validate({...})`)."""
    return REGISTRY.kinds[name].model


@functools.lru_cache(maxsize=8)
def _adapter(version: int) -> TypeAdapter[Any]:
    models = tuple(k.model for k in sorted(REGISTRY.unique(), key=lambda k: k.names[0]))
    union = models[0] if len(models) == 1 else typing.Union[models]  # noqa: UP007 (a tuple of types)
    tagged: Any = Annotated[union, Field(discriminator="check")]
    return TypeAdapter(tagged)


def _validate(value: Any) -> RowCheckBase:
    if isinstance(value, RowCheckBase):
        return value
    checked: RowCheckBase = _adapter(REGISTRY.version).validate_python(value)
    return checked


# a row check of a spec: validated as the registered kind its `check:` names (pydantic's tagged union over the
# registry as it is when the spec is loaded)
RowCheck = Annotated[SerializeAsAny[RowCheckBase], PlainValidator(_validate)]


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


def _argument_text(kind: CheckKind) -> str:
    parts = ["column(s)"] if kind.per_column else []
    for name in kind.arguments:
        info: FieldInfo = kind.model.model_fields[name]
        default = info.get_default(call_default_factory=True)
        shown = f"`{name}`"
        if not info.is_required() and default not in (None, [], {}):
            shown += f" (default {str(default).lower() if isinstance(default, bool) else default})"
        parts.append(shown)
    return ", ".join(parts)


def table() -> str:
    """docs/rules.md's table of row checks, one row per registered kind, by name."""
    rows = ["| check | arguments | fails when | example |", "| --- | --- | --- | --- |"]
    for kind in sorted(REGISTRY.unique(), key=lambda k: k.names[0]):
        names = f"`{kind.names[0]}`" + (f" (alias {', '.join(f'`{a}`' for a in kind.names[1:])})"
                                        if len(kind.names) > 1 else "")
        examples = ", ".join(f"`{e}`" for e in kind.examples)
        rows.append(f"| {names} | {_argument_text(kind)} | {kind.fails_when} | {examples} |")
    return "\n".join(rows)


__all__ = ["REGISTRY", "CheckContext", "CheckKind", "CompiledCheck", "Failing", "OneOrMoreColumns", "RowCheck",
           "RowCheckBase", "kind_of", "model", "row_check", "sql_fragments", "table", "to_sql"]
