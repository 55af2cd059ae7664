"""The keys a JSON file has that its dataset's schema does not declare: new top-level keys, and new fields inside
a declared struct (at any depth of structs).

Spark's JSON reader with a schema reads only the declared keys, so a producer's new field would vanish without a
word. One Spark pass over a batch's JSON files (each record as one variant) lists, per file, the keys of every
record and of every declared struct in it; the reader then reads the new ones too, as text, and they follow
`on_new_columns` like a CSV file's extra column. A new top-level key keeps its name (snake_case with
`standardize_column_names`); a new field of a declared struct becomes a top-level column named by its path with
`__` between the levels (`pricing__discount_tier`), so the declared struct keeps its declared type.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
    out = {}
    for p in paths:
        keys = sorted(by_spark_path.get(spark_paths[p], set()), key=lambda k: (len(k), k))
        out[p] = tuple((k, target_name(spec, k)) for k in keys)
    return out
