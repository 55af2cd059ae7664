"""Cleaning steps, applied in the order written: each step is the DataFrame -> DataFrame function its kind
registered (specs.steps), given the step's argument."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import reduce

from pyspark.sql import DataFrame

from lakehouse.errors import SettingsError
from lakehouse.specs import cleaning_steps
from lakehouse.specs.steps import StepBase, kind_of

Transform = Callable[[DataFrame], DataFrame]

assert cleaning_steps.text  # importing cleaning_steps registers the built-in steps

def step_transform(step: StepBase) -> Transform:
    """The transform of one cleaning step."""
    kind = kind_of(step)
    argument = step.argument
    secret = kind.secret(argument) if kind.secret else None
    if secret and not os.environ.get(secret):
        # before any row is read, as validate-config and the run's start say
        raise SettingsError(f"the {step.step} cleaning step needs its secret key in the environment variable {secret}")
    return lambda df: kind.apply(df, **{kind.names[0]: argument})


def clean(steps: list[StepBase]) -> Transform:
    """All steps in order, as one transform."""
    transforms = [step_transform(s) for s in steps]
    return lambda df: reduce(lambda acc, t: t(acc), transforms, df)
