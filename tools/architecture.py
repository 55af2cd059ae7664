"""Write the floors diagram of docs/architecture.md from the code: the import graph of the `lakehouse` package
(grimp, the library import-linter runs on), each top-level module or subpackage one box, the boxes in the floors
that pyproject.toml's layers contract names, an arrow where one box imports another and no longer way through other boxes implies it. `--check` writes nothing
and exits 1 when the page's diagram is not the code's.

Usage: python tools/architecture.py [--check]
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import grimp
from pages import write_block

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "architecture.md"
BEGIN, END = "<!-- diagram: written by tools/architecture.py -->", "<!-- end of diagram -->"


def floors() -> list[list[str]]:
    """The layers contract's floors, top first, each a list of box names (`pipeline`, `tables`, `cli`...)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return [[name.strip().removeprefix("lakehouse.") for name in re.split(r"[|:]", floor)] for floor in layers]


def edges() -> set[tuple[str, str]]:
    """(importer box, imported box) for every import between two boxes of the package."""
    graph = grimp.build_graph("lakehouse", cache_dir=None)
    out = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = (m.split(".")[1] if "." in m else m for m in (module, imported))
            if a != b and "lakehouse" not in (a, b):
                out.add((a, b))
    return out


def reduced(arrows: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The arrows no longer way implies: a -> c is left out when a reaches c through other boxes (the graph has no
    circle, the contracts see to that)."""
    def reaches(start: str, goal: str, skip: tuple[str, str]) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for a, b in arrows:
                if a == node and (a, b) != skip and b not in seen:
                    if b == goal:
                        return True
                    seen.add(b)
                    todo.append(b)
        return False

    return {arrow for arrow in arrows if not reaches(*arrow, skip=arrow)}


def render() -> str:
    lines = ["```mermaid", "flowchart TD"]
    for number, floor in enumerate(floors()):
        lines.append(f"    subgraph floor{number}[\" \"]")
        lines += [f"        {box}" for box in floor]
        lines.append("    end")
    lines += [f"    {a} --> {b}" for a, b in sorted(reduced(edges()))]
    lines += ["```"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    return write_block(PAGE, BEGIN, END, render(), argv, "tools/architecture.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
