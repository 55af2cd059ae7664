"""Golden outputs: exact expected text under tests/golden/, compared line by line.

`LAKEHOUSE_UPDATE_GOLDEN=1 pytest tests/test_golden.py` rewrites the files from the current output; the diff
is then reviewed like any code change.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
RUN_ID = re.compile(r"\b\d{8}-\d{8}T\d{6}-[0-9a-f]{8}\b")
MOMENT = re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?Z?")
SECONDS = re.compile(r"\b\d+\.\d s\b")


def normalized(text: str, **paths: str | Path) -> str:
    """`text` with run ids and the given paths (name -> path, shown as <name>) made stable."""
    for name, path in sorted(paths.items(), key=lambda kv: -len(str(kv[1]))):
        text = text.replace(str(path), f"<{name}>")
    text = RUN_ID.sub("<run_id>", text)
    text = MOMENT.sub("<time>", text)
    text = SECONDS.sub("<n> s", text)
    return text.rstrip() + "\n"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LAKEHOUSE_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with LAKEHOUSE_UPDATE_GOLDEN=1 to write it"
    expected = path.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path), "output"))
    assert text == expected, f"output differs from {path}:\n{diff}"
