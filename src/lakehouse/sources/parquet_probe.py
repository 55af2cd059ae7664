"""The Parquet probe: a file's footer, its columns' Arrow types as the Spark types they read as, and whether each
declared column's type converts value by value to the spec's (otherwise the file is rejected)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import types as T

from lakehouse.sources.files import RawFile
from lakehouse.sources.probe import BadFile, Shape, map_columns
from lakehouse.specs.models import DatasetSpec
from lakehouse.storage import filesystem


def _spark_type(t: pa.DataType) -> T.DataType | None:
    """The Spark type a Parquet column of arrow type `t` reads as (None: Spark cannot read it)."""
    if pa.types.is_dictionary(t):
        return _spark_type(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return T.StringType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    for check, spark in ((pa.types.is_int8, T.ByteType()), (pa.types.is_int16, T.ShortType()),
                         (pa.types.is_int32, T.IntegerType()), (pa.types.is_int64, T.LongType()),
                         (pa.types.is_uint8, T.ShortType()), (pa.types.is_uint16, T.IntegerType()),
                         (pa.types.is_uint32, T.LongType()), (pa.types.is_uint64, T.DecimalType(20, 0)),
                         (pa.types.is_float32, T.FloatType()), (pa.types.is_float64, T.DoubleType()),
                         (pa.types.is_date32, T.DateType()), (pa.types.is_binary, T.BinaryType()),
                         (pa.types.is_large_binary, T.BinaryType())):
        if check(t):
            return spark
    if pa.types.is_decimal(t):
        return T.DecimalType(t.precision, t.scale) if t.precision <= 38 else None
    if pa.types.is_timestamp(t):
        return T.TimestampType() if t.tz is not None else T.TimestampNTZType()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _spark_type(t.value_type)
        return None if inner is None else T.ArrayType(inner, True)
    if pa.types.is_map(t):
        k, v = _spark_type(t.key_type), _spark_type(t.item_type)
        return None if k is None or v is None else T.MapType(k, v, True)
    if pa.types.is_struct(t):
        fields = []
        for i in range(t.num_fields):
            ft = _spark_type(t.field(i).type)
            if ft is None:
                return None
            fields.append(T.StructField(t.field(i).name, ft, True))
        return T.StructType(fields)
    return None


def _has_nanos(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t):
        return bool(t.unit == "ns")
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_nanos(t.value_type)
    if pa.types.is_struct(t):
        return any(_has_nanos(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _has_nanos(t.key_type) or _has_nanos(t.item_type)
    return False


NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


def _strip(t: T.DataType) -> T.DataType:
    """The type with every nullable flag set, for comparing shapes."""
    if isinstance(t, T.ArrayType):
        return T.ArrayType(_strip(t.elementType), True)
    if isinstance(t, T.MapType):
        return T.MapType(_strip(t.keyType), _strip(t.valueType), True)
    if isinstance(t, T.StructType):
        return T.StructType([T.StructField(f.name, _strip(f.dataType), True) for f in t.fields])
    if isinstance(t, T.TimestampNTZType):
        return T.TimestampType()
    return t


def reconcilable(found: T.DataType, wanted: T.DataType) -> bool:
    """Whether a file column of type `found` can be converted to the declared type `wanted` value by value (a
    value the conversion would change is then a type_mismatch of its row, not a silent change)."""
    found, wanted = _strip(found), _strip(wanted)
    if found == wanted:
        return True
    if isinstance(wanted, T.StringType):
        return not isinstance(found, T.BinaryType | T.ArrayType | T.MapType | T.StructType)
    if isinstance(found, NUMERIC) and isinstance(wanted, NUMERIC):
        return True
    return isinstance(found, T.DateType | T.TimestampType) and isinstance(wanted, T.DateType | T.TimestampType)


def _describe(t: T.DataType) -> str:
    return "timestamp" if isinstance(t, T.TimestampNTZType) else t.simpleString()


def probe_parquet(spec: DatasetSpec, f: RawFile) -> Shape:
    if f.size == 0:
        raise BadFile("empty file (0 bytes): not a Parquet file")
    try:
        if "://" in f.path:
            fs, inner = filesystem(f.path)
            with fs.open_input_file(inner) as handle:
                schema = pq.ParquetFile(handle).schema_arrow
        else:
            schema = pq.ParquetFile(f.path).schema_arrow  # reads the footer only
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "magic bytes" in text.lower():
            raise BadFile("not a Parquet file (bad magic bytes)") from exc
        raise BadFile(f"unreadable Parquet footer: {text}") from exc
    names = [field.name for field in schema]
    mapping = map_columns(spec, names)
    declared = spec.source_schema()
    types: list[T.DataType] = []
    for field, (_, target) in zip(schema, mapping, strict=True):
        spark_type = _spark_type(field.type)
        if target in declared.names:
            wanted = declared[target].dataType
            if spark_type is None or not reconcilable(spark_type, wanted):
                shown = str(field.type) if spark_type is None else _describe(spark_type)
                raise BadFile(f"column {target}: {shown} in the file, {wanted.simpleString()} in the spec")
        elif spark_type is None:
            raise BadFile(f"column {field.name}: type {field.type} cannot be read")
        types.append(spark_type)
    return Shape(columns=mapping, types=tuple(types), convert=any(_has_nanos(fl.type) for fl in schema))
