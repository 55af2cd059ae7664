"""SQL pieces the row checks share: the failing value in a message, a range in words, a pattern match, a parse
with formats."""

from __future__ import annotations

from lakehouse.sql import ident, literal


def value_message(col: str, text: str) -> str:
    """`col=<value> <text>`. concat, not format_string: String.format is the most expensive part of a failing
    row."""
    return f"concat({literal(col + '=')}, coalesce(CAST({ident(col)} AS STRING), 'null'), {literal(' ' + text)})"


def bounds_text(low: object, high: object, inclusive: bool = True, unit: str = "") -> str:
    """A range in words: `must be >= 0`, `must be < 5`, `must be between 1 and 1000`; a count (with a unit) as
    `must be at least 1 row`, `must be at most 5 characters`."""
    if unit:
        if low is not None and low == high:
            return f"must be exactly {low} {unit}"
        if low is not None and high is not None:
            return f"must be between {low} and {high} {unit}"
        bound = low if low is not None else high
        word = "at least" if low is not None else "at most"
        return f"must be {word} {bound} {unit[:-1] if bound == 1 and unit.endswith('s') else unit}"
    if low is not None and high is not None:
        if inclusive:
            return f"must be between {low} and {high}{unit}"
        return f"must be > {low} and < {high}{unit}"
    if low is not None:
        return f"must be {'>=' if inclusive else '>'} {low}{unit}"
    return f"must be {'<=' if inclusive else '<'} {high}{unit}"


def _is_literal_pattern(pattern: str) -> bool:
    return all(ch.isalnum() or ch in " _@,;:'\"/=!<>%&~#-" for ch in pattern)


def matches(text: str, pattern: str) -> str:
    """SQL: the Java regex finds a match in `text`. A pattern of plain characters only (no metacharacter) is a
    substring search, done on the UTF-8 bytes without decoding the value or running the regex engine."""
    if pattern and _is_literal_pattern(pattern):
        return f"contains({text}, {literal(pattern)})"
    return f"{text} RLIKE {literal(pattern)}"


def parse_with_formats(col: str, formats: list[str]) -> str:
    """SQL: the first format that parses the text as a timestamp, else null (never an error, ANSI or not)."""
    return f"coalesce({', '.join(f'try_to_timestamp(CAST({col} AS STRING), {literal(f)})' for f in formats)})"
