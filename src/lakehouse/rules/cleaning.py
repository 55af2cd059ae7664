"""Cleaning steps, applied in the order written: each step is the DataFrame -> DataFrame function its kind
registered (specs.steps), given the step's argument."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

from pyspark.sql import DataFrame

from lakehouse.specs import cleaning_steps  # noqa: F401 (importing it registers the built-in steps)
from lakehouse.specs.steps import StepBase, kind_of, secret

Transform = Callable[[DataFrame], DataFrame]


def step_transform(step: StepBase) -> Transform:
    """The transform of one cleaning step."""
    kind = kind_of(step)
    argument = step.argument
    if kind.secret:
        secret(step.step, kind.secret(argument))  # read before any row is, as validate-config and the run's start
    return lambda df: kind.apply(df, **{kind.names[0]: argument})


def clean(steps: list[StepBase]) -> Transform:
    """All steps in order, as one transform."""
    transforms = [step_transform(s) for s in steps]
    return lambda df: reduce(lambda acc, t: t(acc), transforms, df)
