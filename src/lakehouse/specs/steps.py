"""Cleaning steps: what happens to the rows between the typed cast and the checks, in the order written, each step
registered by one decorated function:

    @cleaning_step("trim", argument="list of columns", does="strip leading/trailing spaces",
                   example="- trim: [store_id]",
                   sample=Sample("store_id string", [{"store_id": " S1 "}], [{"store_id": "S1"}]))
    def trim(df: DataFrame, *, trim: list[str]) -> DataFrame:
        return df.withColumns({c: F.trim(column(c)) for c in trim})

A step is a one-key mapping in the YAML (`- trim: [a, b]`): the function's one keyword-only argument, named as the
step, is that value, and its annotation becomes the spec model. `leaves` says which columns the step leaves given
those before it (default: the same ones), so the columns after cleaning are known before any row is read;
`reads` names the columns it needs that validate-config cannot see by running it on an empty frame; `secret` the
environment variable it reads at run time; `masks` whether it hides values (the quarantine then withholds the raw
line). `sample` is the example at work: rows before and after, run by the tests.

From this registry come the spec union the loader validates (`CleaningStep`, with a did-you-mean among the
registered names), the transforms (`rules.cleaning`) and docs/rules.md's table (`table`). A new step is one
function in a family module of `specs/cleaning_steps/` or in any module imported before the specs are loaded,
plus its test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame

from lakehouse.errors import SettingsError
from lakehouse.specs.base import Spec
from lakehouse.specs.registry import Registry, check_names, model_of, positional


class StepBase(Spec):
    """A cleaning step of a spec: `step` names its kind, the field of the same name holds its argument."""

    step: str

    @property
    def argument(self) -> Any:
        return getattr(self, self.step)

    def leaves(self, columns: list[str]) -> list[str]:
        """The columns after this step, given the columns before it (most steps change values, not columns)."""
        kind = kind_of(self)
        return kind.leaves(columns, self.argument) if kind.leaves else columns


@dataclass(frozen=True)
class Sample:
    """A step's example at work: rows of `schema` (a Spark DDL string) before the step and after it, with the
    environment it needs (`env`)."""

    schema: str
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class StepKind:
    """One registered cleaning step: its name, model, transform and docs entry."""

    names: tuple[str, ...]
    model: type[StepBase]
    apply: Callable[..., DataFrame]
    arguments: list[str]
    argument: str  # the argument's shape in words, for the docs
    does: str
    examples: list[str]
    sample: Sample
    leaves: Callable[[list[str], Any], list[str]] | None = None
    reads: Callable[[Any], list[str]] | None = None
    secret: Callable[[Any], str] | None = None
    masks: bool = False
    module: str = ""


REGISTRY: Registry[StepKind] = Registry("cleaning step", tag="step")


def cleaning_step(name: str, *, argument: str, does: str, example: str, sample: Sample,
                  leaves: Callable[[list[str], Any], list[str]] | None = None,
                  reads: Callable[[Any], list[str]] | None = None, secret: Callable[[Any], str] | None = None,
                  masks: bool = False) -> Callable[[Callable[..., DataFrame]], Callable[..., DataFrame]]:
    """Register the decorated function `(df, *, <name>: <type>) -> DataFrame` as the cleaning step `name`.
    `argument` and `does` describe it in the docs, `example` is a YAML list item naming it and `sample` shows
    that example at work. `leaves(columns, value)` gives the columns after the step, `reads(value)` the columns it
    needs, `secret(value)` the environment variable it reads at run time; `masks`: it hides values."""
    check_names((name,), "cleaning step")

    def register(fn: Callable[..., DataFrame]) -> Callable[..., DataFrame]:
        given = positional(fn)
        model, arguments = model_of(fn, (name,), StepBase, f"The `{name}` cleaning step: {does}.", tag="step")
        if given != ["df"] or arguments != [name]:
            raise TypeError(f"{fn.__qualname__}: a cleaning step takes (df, *, {name}), not "
                            f"({', '.join([*given, *(['*'] if arguments else []), *arguments])})")
        assert issubclass(model, StepBase)
        REGISTRY.add(StepKind((name,), model, fn, arguments, argument, does, [example], sample, leaves, reads,
                              secret, masks, fn.__module__))
        return fn

    return register


def secret(step: str, env_name: str) -> str:
    """The secret a cleaning step reads from the environment variable `env_name`; a SettingsError when unset."""
    value = os.environ.get(env_name, "")
    if not value:
        raise SettingsError(f"the {step} cleaning step needs its secret key in the environment variable {env_name}")
    return value


kind_of = REGISTRY.kind_of
model = REGISTRY.model


# a cleaning step of a spec: validated as the registered kind its `step:` names
CleaningStep = REGISTRY.spec_type(StepBase)


def tag_step(value: Any) -> Any:
    """`- trim: [a, b]` becomes {'step': 'trim', 'trim': [a, b]} so the step name picks the model."""
    if isinstance(value, dict) and "step" not in value:
        if len(value) != 1:
            return {"step": "/".join(map(str, value)) or "(empty)", **value}
        (name,) = value
        return {"step": name, **value}
    return value


def table() -> str:
    """docs/rules.md's table of cleaning steps, one row per registered step, by name."""
    rows = ["| step | argument | effect | example |", "| --- | --- | --- | --- |"]
    for kind in REGISTRY.unique():
        examples = ", ".join(f"`{e}`" for e in kind.examples)
        rows.append(f"| `{kind.names[0]}` | {kind.argument} | {kind.does} | {examples} |")
    return "\n".join(rows)


def columns_read(step: StepBase) -> Sequence[str]:
    """The columns a step names that it needs (`reads`), beyond what running it on an empty frame checks."""
    kind = kind_of(step)
    return kind.reads(step.argument) if kind.reads else ()
