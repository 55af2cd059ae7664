"""A lake's tables as comparable rows: what two lakes built from the same input must share."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import deltalake

LAYERS = ("bronze", "silver", "quarantine", "gold", "_meta")
# columns that name a run or a moment, or a file's store-specific fingerprint: they differ between any two runs;
# the load state, a digest of table versions (each lake's own commits), and the spec fingerprint's run stamp
VOLATILE = {"_run_id", "run_id", "_ingested_at", "recorded_at", "rejected_at", "quarantined_at", "modified_at",
            "etag", "load_state", "started_at", "finished_at", "duration_s", "duration_seconds", "engine"}


def _norm(value: object, root: str) -> object:
    if isinstance(value, str):  # lineage names files by URI (percent-encoded): compared as the paths they name
        return (unquote(value) if value.startswith("file:") else value).replace(root, "<lake>")
    if isinstance(value, list):
        return [_norm(v, root) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v, root) for k, v in value.items()}
    return value


def lake_rows(root: Path, layers: tuple[str, ...] = ("bronze", "silver", "quarantine", "gold")
              ) -> dict[str, list[str]]:
    """Every Delta table of `layers` under `root`: its rows, sorted, volatile columns left out, the lake's own path
    replaced by `<lake>` wherever a value names it."""
    out: dict[str, list[str]] = {}
    for layer in layers:
        for folder in sorted((root / layer).glob("*")):
            if not (folder / "_delta_log").is_dir():
                continue
            rows = deltalake.DeltaTable(str(folder)).to_pyarrow_table().to_pylist()
            out[f"{layer}/{folder.name}"] = sorted(
                json.dumps({k: _norm(v, str(root)) for k, v in r.items() if k not in VOLATILE},
                           sort_keys=True, default=str) for r in rows)
    return out


def table_versions(root: Path) -> dict[str, int]:
    return {f"{layer}/{f.name}": deltalake.DeltaTable(str(f)).version()
            for layer in LAYERS for f in sorted((root / layer).glob("*")) if (f / "_delta_log").is_dir()}
