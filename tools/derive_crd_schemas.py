"""Derive strict JSON Schemas for SparkApplication and ScheduledSparkApplication from the Spark Operator CRDs.

    python tools/derive_crd_schemas.py <folder with sparkoperator.k8s.io_*.yaml> k8s/schemas

"Strict" means what the API server's structural-schema pruning would silently drop becomes an error instead:
every object that lists its properties gets `additionalProperties: false` (unless the CRD marks it
x-kubernetes-preserve-unknown-fields). Descriptions are dropped to keep the files small; types, enums, formats,
patterns, required lists and int-or-string fields are kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

KEEP = {"type", "properties", "items", "required", "enum", "format", "pattern", "additionalProperties",
        "minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength", "nullable", "anyOf", "oneOf",
        "allOf", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"}


# Values the operator's controller acts on where the CRD itself only says "string": a typo there would be
# accepted by the API server and then ignored by the controller.
OPERATOR_ENUMS = {
    "ScheduledSparkApplication": {("spec", "concurrencyPolicy"): ["Allow", "Forbid", "Replace"]},
}


def strict(node):
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key not in KEEP:
            continue
        if key == "properties":
            out[key] = {name: strict(sub) for name, sub in value.items()}
        else:
            out[key] = strict(value)
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def derive(crd_dir: Path, out_dir: Path) -> list[Path]:
    written = []
    for crd_file in sorted(crd_dir.glob("sparkoperator.k8s.io_*.yaml")):
        crd = yaml.safe_load(crd_file.read_text())
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            for path, values in OPERATOR_ENUMS.get(kind, {}).items():
                node = schema
                for part in path:
                    node = node["properties"][part]
                node["enum"] = values
            schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/{version['name']}"}
            schema["properties"]["kind"] = {"const": kind}
            # metadata is validated by the API server's ObjectMeta rules; require the name the operator needs
            schema["properties"]["metadata"] = {"type": "object", "required": ["name"]}
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata",
                                                                             "spec"})
            schema["$schema"] = "http://json-schema.org/draft-07/schema#"
            target = out_dir / f"{kind.lower()}-{version['name']}.schema.json"
            target.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")
            written.append(target)
    return written


if __name__ == "__main__":
    for path in derive(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
