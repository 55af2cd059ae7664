"""Write docs/rules.md's table of row checks from the check registry (lakehouse.specs.vocabulary): one row per
registered check, its arguments from the function's signature, its "fails when" and examples from the decorator.
`--check` writes nothing and exits 1 when the page's table is not the registry's.

Usage: python tools/rules_table.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from pages import write_block

from lakehouse.specs import checks  # noqa: F401 (registers the built-in checks)
from lakehouse.specs.vocabulary import table

PAGE = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
BEGIN, END = "<!-- row checks: written by tools/rules_table.py from the registry -->", "<!-- end of row checks -->"


def main(argv: list[str]) -> int:
    return write_block(PAGE, BEGIN, END, table(), argv, "tools/rules_table.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
