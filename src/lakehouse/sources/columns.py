"""Bronze's technical columns: what a raw row carries besides its data (the text of a line the parser could not
split, the values that did not fit their type, and where the row came from)."""

from __future__ import annotations

from pyspark.sql import types as T

from lakehouse.sql import literal, sql_type

RAW_RECORD = "_raw_record"
READ_ERRORS = "_read_errors"
LINEAGE = ["_source_file", "_partition_date", "_run_id", "_ingested_at"]
TECHNICAL = [RAW_RECORD, READ_ERRORS, *LINEAGE]
READ_ERROR_TYPE = T.ArrayType(T.StructType([T.StructField("column", T.StringType()),
                                            T.StructField("message", T.StringType())]))
NO_READ_ERRORS = f"CAST(array() AS {sql_type(READ_ERROR_TYPE)})"
# the value a read error's message quotes (`value <v> is a JSON object or array...`, `value <v> (<type> in the
# file) is not a valid <type>`: the messages _json and _parquet write), for a rescued value
_QUOTED_VALUE = r"(?s)^value (.*) (is a JSON object or array.*|\(.+ in the file\) is not a valid .+)$"


def read_error_value(error: str) -> str:
    """SQL: the value a read error (`error`, an element of `_read_errors`) is about, as read."""
    return f"regexp_extract({error}.message, {literal(_QUOTED_VALUE)}, 1)"
