"""Transient failures retried in place: exponential backoff with jitter, each try logged.

A failure counts as transient when `errors.environment_cause` finds its cause outside the data (a file briefly
unreadable, a connection reset, S3 throttling): tried again up to LAKEHOUSE_RETRIES times in all (default 3),
waiting LAKEHOUSE_RETRY_BASE_SECONDS (default 0.5) × 2^(try-1) × a random factor in [0.5, 1.5). What still fails is
raised as `EnvironmentFailure` (one line: the cause and what was being done), so the dataset or the run fails with
a non-zero exit, the file is not recorded as a bad file, and the next `--pending` tries it again. Any other error
is raised at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from lakehouse.env import env_number
from lakehouse.errors import EnvironmentFailure, environment_cause

log = logging.getLogger(__name__)
T = TypeVar("T")


def tries() -> int:
    return int(env_number("LAKEHOUSE_RETRIES", 3, 1))


def base_seconds() -> float:
    return env_number("LAKEHOUSE_RETRY_BASE_SECONDS", 0.5, 0)


# causes that pass by themselves (the network, an object store's throttling or 5xx): a whole stage (a dataset's load,
# a gold table) is worth trying again in place; a full disk or a permission is not
TRANSIENT = ("connection refused", "connection reset", "connection failed", "timed out", "host unreachable",
             "network unreachable", "S3 throttling (SlowDown)", "service unavailable (503)", "S3 internal error (500)")


def transient_cause(exc: BaseException) -> str | None:
    cause = exc.cause if isinstance(exc, EnvironmentFailure) else environment_cause(exc)
    return cause if cause in TRANSIENT else None


def delay(attempt: int) -> float:
    """Seconds to wait before try `attempt + 1`: exponential, with jitter."""
    return float(base_seconds() * 2 ** (attempt - 1) * (0.5 + random.random()))


def with_retries(fn: Callable[[], T], what: str) -> T:
    """`fn()`, tried again while it fails for a cause in the environment; `what` names the work for the log and
    the final error (e.g. "reading s3://bucket/raw/sales/date=2024-07-01/sales.csv")."""
    total = tries()
    attempt = 1
    while True:
        try:
            return fn()
        except EnvironmentFailure:
            raise
        except Exception as exc:
            cause = environment_cause(exc)
            if cause is None:
                raise
            if attempt >= total:
                raise EnvironmentFailure(what, cause) from exc
            wait = delay(attempt)
            log.warning("%s: %s (try %d of %d); trying again in %.1f s", what, cause, attempt, total, wait)
            time.sleep(wait)
            attempt += 1
