"""Spark SQL text for rules: quoted identifiers and literals that mean the same under every parser setting.

Rules are compiled to SQL text and handed to Spark in one `selectExpr` rather than built Column by Column: each
Column operation from Python is a round trip to the JVM, and twenty checks built that way cost more driver time
than checking a million rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from pyspark.sql import types as T

# characters that keep a quoted string literal identical whether or not backslash escapes are enabled
_UNSAFE_IN_STRING = ("'", "\\")


def ident(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def literal(value: Any) -> str:
    """A Python value (as YAML gives it) as a SQL literal of the matching Spark type."""
    match value:
        case None:
            return "NULL"
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float():
            if math.isnan(value):
                return "CAST('NaN' AS DOUBLE)"
            if math.isinf(value):
                return f"CAST('{'-' if value < 0 else ''}Infinity' AS DOUBLE)"
            return f"{value!r}D"
        case decimal.Decimal():
            return f"{format(value, 'f')}BD"
        case str():
            if any(ch in value for ch in _UNSAFE_IN_STRING):
                # quotes and backslashes: the UTF-8 bytes in hex, so no escaping rule applies
                return f"CAST(X'{value.encode('utf-8').hex().upper()}' AS STRING)"
            return f"'{value}'"
        case dt.datetime():
            return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
        case dt.date():
            return f"DATE'{value.isoformat()}'"
    raise TypeError(f"no SQL literal for {value!r} ({type(value).__name__})")


def instant(moment: dt.datetime) -> str:
    """An absolute instant as a timestamp, independent of the session time zone (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return f"timestamp_micros({(moment - epoch) // dt.timedelta(microseconds=1)})"


def all_of(*conditions: str) -> str:
    return " AND ".join(f"({c})" for c in conditions)


def any_of(*conditions: str) -> str:
    return " OR ".join(f"({c})" for c in conditions) if conditions else "false"


def sql_type(dtype: T.DataType) -> str:
    """A Spark type as SQL type text (struct field names quoted)."""
    match dtype:
        case T.ArrayType():
            return f"array<{sql_type(dtype.elementType)}>"
        case T.MapType():
            return f"map<{sql_type(dtype.keyType)},{sql_type(dtype.valueType)}>"
        case T.StructType():
            return "struct<" + ",".join(f"{ident(f.name)}:{sql_type(f.dataType)}" for f in dtype.fields) + ">"
    return dtype.simpleString()
