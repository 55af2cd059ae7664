"""All SQL text the product writes: quoted identifiers and literals, for Spark and for delta-rs.

Two parsers read this text. Spark reads the compiled rules, filters and the jvm engine's MERGE conditions and
partition predicates; delta-rs (DataFusion) reads the rust engine's. They disagree on string literals: Spark
joins adjacent literals (`'it''s'` is `its`) and unescapes backslashes, DataFusion doubles a quote and keeps
backslashes as they are. So a literal is rendered for a dialect: `spark` (the default) writes a string holding
a quote or backslash as its UTF-8 bytes in hex, which no escaping rule touches; `delta-rs` doubles the quote.
Identifiers are backquoted in both.

Rules are compiled to SQL text and handed to Spark in one `selectExpr` rather than built Column by Column: each
Column operation from Python is a round trip to the JVM, and twenty checks built that way cost more driver time
than checking a million rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterable
from typing import Any, Literal

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

Dialect = Literal["spark", "delta-rs"]

# characters that keep a quoted string literal identical whether or not backslash escapes are enabled
_UNSAFE_IN_STRING = ("'", "\\")


def ident(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def column(name: str) -> Column:
    """A column by name as a Spark Column (quoted: dots and backquotes in the name are part of it)."""
    return F.col(ident(name))


def qualified(alias: str, name: str) -> str:
    """`alias.name` with the name quoted (alias empty: the name alone)."""
    return f"{alias}.{ident(name)}" if alias else ident(name)


def literal(value: Any, dialect: Dialect = "spark") -> str:
    """A Python value (as YAML gives it) as a SQL literal of the matching type."""
    if dialect == "delta-rs":
        return _datafusion_literal(value)
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


def _datafusion_literal(value: Any) -> str:
    match value:
        case None:
            return "NULL"
        case bool():
            return "true" if value else "false"
        case int() | decimal.Decimal():
            return str(value)
        case float() if math.isfinite(value):
            return repr(value)
        case str():
            return "'" + value.replace("'", "''") + "'"
        case dt.datetime():
            # compared as text: a TIMESTAMP literal is nanoseconds to DataFusion, the table's microseconds
            return "'" + value.isoformat(sep=" ") + "'"
        case dt.date():
            return "'" + value.isoformat() + "'"
    raise TypeError(f"no delta-rs SQL literal for {value!r} ({type(value).__name__})")


def in_list(column: str, values: Iterable[Any], dialect: Dialect = "spark") -> str:
    """`column IN (...)` (column: SQL text, e.g. from `qualified`), with `column IS NULL` when None is among the
    values; `false` for no values."""
    values = list(values)
    present = sorted({v for v in values if v is not None}, key=str)
    parts = []
    if present:
        parts.append(f"{column} IN ({', '.join(literal(v, dialect) for v in present)})")
    if any(v is None for v in values):
        parts.append(f"{column} IS NULL")
    if not parts:
        return "false"
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


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
