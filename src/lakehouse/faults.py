"""Named points in the job where a test can stop the process dead, as a crash or `kill -9` would.

Set `LAKEHOUSE_KILL_AT=<point>` (one of POINTS) and the process sends itself SIGKILL when it reaches that point
(`LAKEHOUSE_KILL_AT=<point>@<n>`: the n-th time). The kill tests use it to show that every interruption heals on the
next run; without the variable a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "dataset:start",          # before anything of a dataset is written
    "bronze:written",         # bronze partition replaced
    "quarantine:written",     # quarantine partition replaced
    "silver:before",          # the batch compared with silver, nothing written yet
    "silver:after_delete",    # rows gone from the day's files deleted, new and changed rows not written yet
    "silver:between_commits", # changed rows merged, new rows not committed yet
    "silver:written",         # silver committed
    "ingested:before",        # before the ingested-file log records the day's files
    "gold:before",            # before a gold table is recomputed
    "gold:written",           # a gold table committed
    "meta:before",            # before the run record is appended
)
_seen: dict[str, int] = {}


def point(name: str) -> None:
    """Die here when LAKEHOUSE_KILL_AT names this point (and its occurrence)."""
    wanted = os.environ.get("LAKEHOUSE_KILL_AT")
    if not wanted:
        return
    target, _, nth = wanted.partition("@")
    if target != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
