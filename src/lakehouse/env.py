"""Numeric settings read from the environment, checked where they are read: a bad value is a SettingsError that
names the variable. Below every module that reads one (settings, retry, lease, the job)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from lakehouse.errors import SettingsError


def env_number(name: str, default: float, minimum: float = 0, env: Mapping[str, str] | None = None) -> float:
    """A numeric setting from the environment (default when unset); a SettingsError names a bad value."""
    text = (os.environ if env is None else env).get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = minimum - 1
    whole = minimum >= 1 and value != int(value)
    if value < minimum or whole:
        kind = "a whole number" if minimum >= 1 else "a number"
        raise SettingsError(f"{name}={text!r}: expected {kind} >= {minimum:g}")
    return value
