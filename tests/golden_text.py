"""Golden outputs: exact expected text under tests/golden/, compared line by line.

`LAKEHOUSE_UPDATE_GOLDEN=1 pytest tests/test_golden.py` rewrites the files from the current output; the diff
is then reviewed like any code change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
RUN_ID = re.compile(r"\b\d{8}-\d{8}T\d{6}-[0-9a-f]{8}\b")


def normalized(text: str, **paths: str | Path) -> str:
    """`text` with run ids and the given paths (name -> path, shown as <name>) made stable."""
    for name, path in sorted(paths.items(), key=lambda kv: -len(str(kv[1]))):
        text = text.replace(str(path), f"<{name}>")
    text = RUN_ID.sub("<run_id>", text)
    return text.rstrip() + "\n"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LAKEHOUSE_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with LAKEHOUSE_UPDATE_GOLDEN=1 to write it"
    expected = path.read_text()
    assert text == expected, f"output differs from {path}:\n--- expected\n{expected}\n--- got\n{text}"
