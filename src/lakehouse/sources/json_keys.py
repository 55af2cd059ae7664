"""The keys a JSON file has that its dataset's schema does not declare: new top-level keys, and new fields inside
a declared struct (at any depth of structs).

Spark's JSON reader with a schema reads only the declared keys, so a producer's new field would vanish without a
word. One Spark pass over a batch's JSON files (each record as one variant) lists, per file, the keys of every
record and of every declared struct in it; the reader then reads the new ones too, as text, and they follow
`on_new_columns` like a CSV file's extra column. A new top-level key keeps its name (snake_case with
`standardize_column_names`); a new field of a declared struct becomes a top-level column named by its path with
`__` between the levels (`pricing__discount_tier`), so the declared struct keeps its declared type.

The files of a small batch (local, at most PYTHON_SCAN_BYTES together, no reader options) are scanned in Python
instead: the same keys without a Spark job (about a second per dataset on a cold JVM). Python answers for a file
only when every record of it is plain JSON both parsers read alike (UTF-8, one object per line, no duplicate
key); the other files go through the Spark pass.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterator
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from lakehouse.specs.models import DatasetSpec
from lakehouse.specs.names import snake_case
from lakehouse.sql import literal
from lakehouse.storage import spark_literal

# (path of keys from the record's root, name of the bronze column)
NewKey = tuple[tuple[str, ...], str]
VARIANT = "_record"
SEP = "\u0000"
PYTHON_SCAN_BYTES = 4 * 2**20  # a batch of JSON files up to this size has its keys found in Python


class _NotPlain(Exception):
    """A record the Python scan does not vouch for reading as Spark does."""


def _structs(dtype: T.StructType, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], T.StructType]]:
    """Every struct reachable through struct fields, with its path ((): the record itself)."""
    yield path, dtype
    for f in dtype.fields:
        if isinstance(f.dataType, T.StructType):
            yield from _structs(f.dataType, (*path, f.name))


def _json_path(path: tuple[str, ...]) -> str:
    return "$" + "".join(f"[{literal(p)}]" for p in path)


def target_name(spec: DatasetSpec, path: tuple[str, ...]) -> str:
    parts = [snake_case(p) if spec.standardizes_names() else p for p in path]
    return "__".join(parts)


def new_keys(spark: SparkSession, spec: DatasetSpec, paths: list[str], spark_paths: dict[str, str]
             ) -> dict[str, tuple[NewKey, ...]]:
    """Per file (by its path as given), its undeclared keys in order of path. `spark_paths` maps each path to the
    form Spark's `_metadata.file_path` shows."""
    if not paths:
        return {}
    declared = spec.source_schema()
    found = _python_keys(spec, declared, paths)
    paths = [p for p in paths if p not in found]  # what Python does not vouch for: the Spark pass
    if not paths:
        return found
    options = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in spec.source.options.items()}
    records = (spark.read.options(**options).option("singleVariantColumn", VARIANT)
               .json([spark_literal(p) for p in paths])
               .selectExpr("_metadata.file_path AS _file", VARIANT))
    view = f"_json_records_{uuid.uuid4().hex}"
    records.createOrReplaceTempView(view)
    selects = []
    for path, struct in _structs(declared):
        value = VARIANT if not path else f"variant_get({VARIANT}, {literal(_json_path(path))})"
        names = ", ".join(literal(n) for n in struct.names) or "''"
        selects.append(f"SELECT DISTINCT _file, {literal(SEP.join(path))} AS _parent, e.key AS _key FROM {view}, "
                       f"LATERAL variant_explode({value}) AS e "
                       f"WHERE e.key IS NOT NULL AND NOT array_contains(array({names}), e.key)")
    try:
        rows = spark.sql(" UNION ".join(selects)).collect()
    finally:
        spark.catalog.dropTempView(view)
    by_spark_path: dict[str, set[tuple[str, ...]]] = {}
    for row in rows:
        parent = tuple(row["_parent"].split(SEP)) if row["_parent"] else ()
        by_spark_path.setdefault(row["_file"], set()).add((*parent, row["_key"]))
    return {**found, **{p: _named(spec, by_spark_path.get(spark_paths[p], set())) for p in paths}}


def _named(spec: DatasetSpec, keys: set[tuple[str, ...]]) -> tuple[NewKey, ...]:
    return tuple((k, target_name(spec, k)) for k in sorted(keys, key=lambda k: (len(k), k)))


def _python_keys(spec: DatasetSpec, declared: T.StructType, paths: list[str]) -> dict[str, tuple[NewKey, ...]]:
    """`new_keys` found in Python for the files of a small batch that are plain local JSON-lines files (none when
    the dataset has reader options or the batch is large): a remote or compressed file, or one with a record
    that is not plain, is left to the Spark pass."""
    if spec.source.options:
        return {}
    local = [p for p in paths if "://" not in p and p.endswith((".json", ".jsonl", ".ndjson"))]
    try:
        if sum(os.path.getsize(p) for p in local) > PYTHON_SCAN_BYTES:
            return {}
    except OSError:
        return {}
    structs = list(_structs(declared))
    out = {}
    for p in local:
        try:
            out[p] = _named(spec, _file_keys(p, structs))
        except (OSError, _NotPlain):
            continue
    return out


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [k for k, _ in pairs]
    if len(set(names)) != len(names):
        raise _NotPlain("duplicate key")  # Spark's variant refuses the record
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise _NotPlain(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotPlain(f"number out of range: {text}")
    return value


def _file_keys(path: str, structs: list[tuple[tuple[str, ...], T.StructType]]) -> set[tuple[str, ...]]:
    keys: set[tuple[str, ...]] = set()
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _NotPlain("not UTF-8") from exc
            if text.startswith("\ufeff") or "\r" in text.rstrip("\r\n"):
                raise _NotPlain("byte order mark or lone carriage return")
            if not text.strip():
                continue
            try:
                record = json.loads(text, object_pairs_hook=_unique, parse_constant=_reject_constant,
                                    parse_float=_finite)
            except ValueError as exc:
                raise _NotPlain("malformed") from exc
            if not isinstance(record, dict):
                raise _NotPlain("not an object")
            for where, struct in structs:
                value: Any = record
                for part in where:
                    value = value.get(part) if isinstance(value, dict) else None
                if isinstance(value, dict):
                    keys.update((*where, k) for k in value if k not in struct.names)
    return keys
