"""A block of a docs page written by a tool between two marker lines; `--check` compares instead of writing."""

from __future__ import annotations

import sys
from pathlib import Path


def write_block(page: Path, begin: str, end: str, body: str, argv: list[str], tool: str) -> int:
    """Put `body` between the lines `begin` and `end` of `page`; with `--check` in `argv`, write nothing and
    return 1 (naming `tool`) when the page holds something else there."""
    text = page.read_text()
    start, stop = text.index(begin), text.index(end) + len(end)
    updated = text[:start] + begin + "\n" + body + "\n" + end + text[stop:]
    if "--check" in argv:
        if updated != text:
            print(f"{page}: the block under {begin!r} is not what the code says; run python {tool}",
                  file=sys.stderr)
            return 1
        return 0
    page.write_text(updated)
    return 0
