"""The built-in formats' Spark scans: how files of one shape are read, and the SQL that lines each scan up on
bronze's columns (a text value per declared column, the read errors of the row). `sources.reader` runs them."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from lakehouse.sources.columns import NO_READ_ERRORS, RAW_RECORD, READ_ERROR_TYPE, READ_ERRORS
from lakehouse.sources.probe import Shape, csv_options
from lakehouse.specs.models import DatasetSpec
from lakehouse.sql import ident, literal, sql_type


def _with_leaves(dtype: T.DataType, leaf: T.DataType) -> T.DataType:
    """The same shape (structs, arrays, map values) with every leaf of type `leaf`."""
    if isinstance(dtype, T.StructType):
        return T.StructType([T.StructField(f.name, _with_leaves(f.dataType, leaf), True) for f in dtype.fields])
    if isinstance(dtype, T.ArrayType):
        return T.ArrayType(_with_leaves(dtype.elementType, leaf), True)
    if isinstance(dtype, T.MapType):
        return T.MapType(T.StringType(), _with_leaves(dtype.valueType, leaf), True)
    return leaf


def as_text(dtype: T.DataType) -> T.DataType:
    """Every leaf a string: what a text format is read as before the typed cast."""
    return _with_leaves(dtype, T.StringType())


def _as_variant(dtype: T.DataType) -> T.DataType:
    """Every leaf a variant: the JSON reader then tells an object from a string."""
    return _with_leaves(dtype, T.VariantType())


def _nested_value(expr: str) -> str:
    return f"left(schema_of_variant({expr}), 1) IN ('O', 'A')"


def _variant_to_text(expr: str, dtype: T.DataType, depth: int = 0) -> tuple[str, str]:
    """SQL (text value, misplaced-object condition) of a variant-leaved value of declared type `dtype`."""
    if isinstance(dtype, T.StructType):
        parts, bad = [], []
        for f in dtype.fields:
            value, wrong = _variant_to_text(f"{expr}.{ident(f.name)}", f.dataType, depth)
            parts.append(f"{literal(f.name)}, {value}")
            bad.append(wrong)
        return (f"CASE WHEN {expr} IS NULL THEN NULL ELSE named_struct({', '.join(parts)}) END",
                " OR ".join(f"coalesce({b}, false)" for b in bad))
    if isinstance(dtype, T.ArrayType | T.MapType):
        var = f"e{depth}"
        inner = dtype.elementType if isinstance(dtype, T.ArrayType) else dtype.valueType
        value, wrong = _variant_to_text(var, inner, depth + 1)
        if isinstance(dtype, T.ArrayType):
            return f"transform({expr}, {var} -> {value})", f"exists({expr}, {var} -> coalesce({wrong}, false))"
        return (f"transform_values({expr}, (k{depth}, {var}) -> {value})",
                f"exists(map_values({expr}), {var} -> coalesce({wrong}, false))")
    return f"CASE WHEN {_nested_value(expr)} THEN NULL ELSE CAST({expr} AS STRING) END", _nested_value(expr)


def _with_field(struct: T.StructType, path: tuple[str, ...]) -> T.StructType:
    """`struct` with a variant field at `path` (the structs on the way exist)."""
    head, rest = path[0], path[1:]
    if not rest:
        return T.StructType([*struct.fields, T.StructField(head, T.VariantType(), True)])
    return T.StructType([T.StructField(f.name, _with_field(f.dataType, rest), True)
                         if f.name == head and isinstance(f.dataType, T.StructType) else f for f in struct.fields])


def scan_csv(spark: SparkSession, spec: DatasetSpec, paths: list[str], shape: Shape
             ) -> tuple[DataFrame, dict[str, str]]:
    """Delimited text: every column read as text by its position in the header; an unparsable line kept whole."""
    options = csv_options(spec)
    options.update({"enforceSchema": "true", "mode": "PERMISSIVE", "columnNameOfCorruptRecord": RAW_RECORD})
    if shape.multiline:
        options["multiLine"] = "true"
    schema = T.StructType([T.StructField(f"_c{i}", T.StringType(), True) for i in range(len(shape.columns))]
                          + [T.StructField(RAW_RECORD, T.StringType(), True)])
    df = spark.read.options(**options).schema(schema).csv(paths)
    values = {target: f"_c{i}" for i, (_, target) in enumerate(shape.columns)}
    values[RAW_RECORD] = ident(RAW_RECORD)
    values[READ_ERRORS] = NO_READ_ERRORS
    return df, values

def scan_json(spark: SparkSession, spec: DatasetSpec, paths: list[str], shape: Shape
              ) -> tuple[DataFrame, dict[str, str]]:
    """JSON lines: declared fields read as variants and shown as text (an object where a scalar is declared is a
    read error of the row), undeclared keys (the shape's) as JSON text."""
    declared = spec.source_schema()
    options = {str(k): str(v).lower() if isinstance(v, bool) else str(v)
               for k, v in spec.source.options.items()}
    read = T.StructType([T.StructField(f.name, _as_variant(f.dataType), True) for f in declared.fields])
    for path, _ in shape.json_keys:
        read = _with_field(read, path)
    schema = T.StructType([*read.fields, T.StructField(RAW_RECORD, T.StringType(), True)])
    df = (spark.read.options(**options).schema(schema).option("mode", "PERMISSIVE")
          .option("columnNameOfCorruptRecord", RAW_RECORD).json(paths))
    values, errors = {}, []
    for f in declared.fields:
        value, wrong = _variant_to_text(ident(f.name), f.dataType)
        values[f.name] = value
        what = "a JSON object or array" if isinstance(f.dataType, T.AtomicType) else \
            "a JSON object or array where a scalar is declared"
        errors.append(f"CASE WHEN {wrong} THEN array(named_struct('column', {literal(f.name)}, 'message', "
                      f"concat('value ', CAST({ident(f.name)} AS STRING), {literal(' is ' + what)}))) "
                      f"ELSE array() END")
    for path, target in shape.json_keys:
        value = ".".join(ident(p) for p in path)
        values[target] = f"CASE WHEN {_nested_value(value)} THEN to_json({value}) ELSE CAST({value} AS STRING) END"
    values[RAW_RECORD] = ident(RAW_RECORD)
    values[READ_ERRORS] = f"CAST(concat({', '.join(errors)}) AS {sql_type(READ_ERROR_TYPE)})" if errors \
        else NO_READ_ERRORS
    return df, values

def scan_parquet(spark: SparkSession, spec: DatasetSpec, paths: list[str], shape: Shape
                 ) -> tuple[DataFrame, dict[str, str]]:
    """Parquet: columns read with the types the probe found, converted to the declared types where a value
    survives the conversion unchanged (otherwise a read error of the row)."""
    declared = spec.source_schema()
    schema = T.StructType([T.StructField(name, t, True) for (name, _), t in zip(shape.columns, shape.types,
                                                                                strict=True)])
    df = spark.read.schema(schema).parquet(*paths)
    values, errors = {}, []
    for (name, target), found in zip(shape.columns, shape.types, strict=True):
        col = ident(name)
        if target not in declared.names:
            nested = isinstance(found, T.StructType | T.ArrayType | T.MapType)
            values[target] = f"to_json({col})" if nested else f"CAST({col} AS STRING)"
            continue
        wanted = declared[target].dataType
        if found == wanted:
            values[target] = col
            continue
        cast = f"CAST({col} AS {sql_type(wanted)})"
        if isinstance(found, T.AtomicType) and not isinstance(wanted, T.StringType):
            # a value that does not survive the conversion unchanged is a type mismatch, not a silent change
            changed = f"{col} IS NOT NULL AND ({cast} IS NULL OR CAST({cast} AS {sql_type(found)}) <> {col})"
            values[target] = f"CASE WHEN {changed} THEN NULL ELSE {cast} END"
            message = (f"concat('value ', CAST({col} AS STRING), "
                       f"{literal(f' ({found.simpleString()} in the file) is not a valid {wanted.simpleString()}')})")
            errors.append(f"CASE WHEN {changed} THEN array(named_struct('column', {literal(target)}, "
                          f"'message', {message})) ELSE array() END")
        else:
            values[target] = cast
    values[READ_ERRORS] = f"CAST(concat({', '.join(errors)}) AS {sql_type(READ_ERROR_TYPE)})" if errors \
        else NO_READ_ERRORS
    return df, values
