"""Write <conf>/kustomization.yaml from the spec files there: one ConfigMap of every datasets/*.yaml and one of
every aggregations/*.yaml, so adding a dataset or a gold table is one YAML file (`make k8s-conf`, run by
`make k8s-check`). `--check` writes nothing and exits 1 naming what the file misses or lists in excess.

Usage: python tools/conf_kustomization.py [CONF_DIR] [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

HEADER = """\
# The specs as ConfigMaps for the cluster (k8s/base includes this folder). Written by
# tools/conf_kustomization.py (`make k8s-conf`, run by `make k8s-check`) from the files under datasets/ and
# aggregations/: do not edit by hand, add a spec file and run it.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
configMapGenerator:
"""
MAPS = {"datasets": "lakehouse-datasets", "aggregations": "lakehouse-aggregations"}


def render(conf: Path) -> str:
    lines = [HEADER.rstrip("\n")]
    for folder, name in MAPS.items():
        files = sorted(p.relative_to(conf).as_posix() for p in (conf / folder).glob("*.y*ml"))
        lines += [f"  - name: {name}", "    files:", *[f"      - {f}" for f in files]]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    conf = Path(args[0] if args else "conf")
    target = conf / "kustomization.yaml"
    wanted = render(conf)
    if check:
        held = target.read_text() if target.exists() else ""
        if held == wanted:
            return 0
        listed = {line.strip()[2:] for line in held.splitlines() if line.strip().startswith("- ") and "/" in line}
        needed = {line.strip()[2:] for line in wanted.splitlines() if line.strip().startswith("- ") and "/" in line}
        print(f"{target} is not as the spec files make it: missing {sorted(needed - listed)}, in excess "
              f"{sorted(listed - needed)}; run `make k8s-conf`", file=sys.stderr)
        return 1
    target.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
