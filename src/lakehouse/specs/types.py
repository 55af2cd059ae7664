"""Column type strings of the specs ("decimal(10,2)", "array<string>", "struct<a:int>") parsed without a JVM.

The parser builds pyspark DataType objects, which are plain Python classes, so a typo in a type is reported
while the specs load, before Spark starts.
"""

from __future__ import annotations

import re

from pyspark.sql import types as T

_PRIMITIVES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "boolean": T.BooleanType(),
    "bool": T.BooleanType(),
    "tinyint": T.ByteType(),
    "smallint": T.ShortType(),
    "int": T.IntegerType(),
    "integer": T.IntegerType(),
    "bigint": T.LongType(),
    "long": T.LongType(),
    "float": T.FloatType(),
    "double": T.DoubleType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "binary": T.BinaryType(),
}

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|\d+|[<>(),:])")


class TypeParseError(ValueError):
    """A type string that is not one of the supported column types."""


def _tokens(text: str) -> list[str]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise TypeParseError(f"unexpected character {text[pos]!r} in type {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok.lower() != expected):
            want = expected or "a type"
            raise TypeParseError(f"expected {want!r} in type {self.text!r}, got {tok!r}")
        self.i += 1
        return tok

    def parse(self) -> T.DataType:
        name = self.take().lower()
        if name in _PRIMITIVES:
            return _PRIMITIVES[name]
        if name == "decimal":
            precision, scale = 10, 0
            if self.peek() == "(":
                self.take("(")
                precision = int(self.take())
                if self.peek() == ",":
                    self.take(",")
                    scale = int(self.take())
                self.take(")")
            if not 1 <= precision <= 38 or not 0 <= scale <= precision:
                raise TypeParseError(f"decimal({precision},{scale}) is out of range in {self.text!r}")
            return T.DecimalType(precision, scale)
        if name == "array":
            self.take("<")
            element = self.parse()
            self.take(">")
            return T.ArrayType(element, True)
        if name == "map":
            self.take("<")
            key = self.parse()
            self.take(",")
            value = self.parse()
            self.take(">")
            return T.MapType(key, value, True)
        if name == "struct":
            self.take("<")
            fields = []
            while True:
                fname = self.take()
                self.take(":")
                fields.append(T.StructField(fname, self.parse(), True))
                if self.peek() == ",":
                    self.take(",")
                    continue
                break
            self.take(">")
            return T.StructType(fields)
        known = ", ".join(sorted(_PRIMITIVES)) + ", decimal(p,s), array<..>, map<..,..>, struct<..>"
        raise TypeParseError(f"unknown type {name!r} (known: {known})")


def parse_type(text: str) -> T.DataType:
    """Parse one column type string into a Spark DataType."""
    parser = _Parser(text)
    dtype = parser.parse()
    if parser.peek() is not None:
        raise TypeParseError(f"unexpected {parser.peek()!r} after the type in {text!r}")
    return dtype


def parse_column(text: str) -> tuple[T.DataType, bool]:
    """Parse "<type> [not null]"; returns (type, nullable)."""
    stripped = text.strip()
    nullable = True
    if re.search(r"\s+not\s+null$", stripped, flags=re.IGNORECASE):
        nullable = False
        stripped = re.sub(r"\s+not\s+null$", "", stripped, flags=re.IGNORECASE)
    return parse_type(stripped), nullable
