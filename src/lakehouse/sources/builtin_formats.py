"""The built-in raw formats, registered with `sources.formats`: delimited text, JSON lines, Parquet."""

from __future__ import annotations

from lakehouse.sources.formats import RawFormat, register
from lakehouse.sources.parquet_probe import probe_parquet
from lakehouse.sources.probe import probe_csv, probe_json
from lakehouse.sources.scans import scan_csv, scan_json, scan_parquet

CSV = register(RawFormat("csv", ("*.csv", "*.tsv", "*.txt"), probe_csv, scan_csv))
JSON = register(RawFormat("json", ("*.json", "*.jsonl", "*.ndjson"), probe_json, scan_json, keys_per_record=True))
PARQUET = register(RawFormat("parquet", ("*.parquet", "*.parq", "*.pq"), probe_parquet, scan_parquet,
                             compressed=False, typed=True))
