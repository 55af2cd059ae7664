"""Write docs/rules.md's tables of row checks, dataset checks and cleaning steps from their registries
(lakehouse.specs.vocabulary, lakehouse.specs.dataset_checks, lakehouse.specs.steps): one row per registered kind,
its arguments from the function's signature, its "fails when" / "observed value" / effect and examples from the
decorator. `--check` writes nothing and exits 1 when a
table on the page is not the registry's.

Usage: python tools/rules_table.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from pages import write_block

from lakehouse.specs import checks, cleaning_steps, dataset_checks, steps, vocabulary

PAGE = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
TABLES = [
    ("row checks", vocabulary.table),
    ("dataset checks", dataset_checks.table),
    ("cleaning steps", steps.table),
]
assert checks.row_checks and cleaning_steps.text  # importing them registers the built-in kinds


def main(argv: list[str]) -> int:
    status = 0
    for what, table in TABLES:
        begin, end = f"<!-- {what}: written by tools/rules_table.py from the registry -->", f"<!-- end of {what} -->"
        status |= write_block(PAGE, begin, end, table(), argv, "tools/rules_table.py")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
