"""The process's logging: Spark-like text lines (default) or one JSON object per line (LAKEHOUSE_LOG_FORMAT=json,
the container image's default), with no AWS secret of the process in any line.

JSON lines go to stdout; they carry `time` (UTC, ISO 8601), `level`, `logger` and `message`, then the record's own fields (a stage
event's run_id, dataset, run_date, stage, rows_in, rows_out, duration_s, status, ...). A record with an exception
carries its cause in one line as `error` and the stack trace as `stack`. python-json-logger does the encoding.
Spark's own (JVM) log lines take the same shape through `conf/spark/log4j2-json.properties`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from lakehouse.redaction import redact

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_mode(env: dict[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get("LAKEHOUSE_LOG_FORMAT", "text").strip().lower()
    return value == "json"


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _JsonLines(JsonFormatter):
    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        if record.exc_info and record.exc_info[1] is not None and not log_data.get("error"):
            from lakehouse.errors import describe

            log_data["error"] = describe(record.exc_info[1])

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def json_formatter() -> logging.Formatter:
    return _JsonLines("%(levelname)s %(name)s %(message)s", timestamp="time",
                      rename_fields={"levelname": "level", "name": "logger", "exc_info": "stack"})


class _QuietPy4J(logging.Filter):
    """Py4J logs a lost JVM connection on the root logger, with a traceback (at ERROR when it gives up); the
    command says it in one line (the JVM's death). The record goes to the console's detail file; -v shows it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if f"{os.sep}py4j{os.sep}" not in record.pathname:
            return True
        from lakehouse.telemetry.console import keep_detail

        keep_detail(_DETAIL_FORMAT.format(record))
        return False


_DETAIL_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure(verbose: bool = False) -> None:
    """Root logging for the command line: the format the environment asks for, quiet third-party loggers, stage
    events shown in JSON mode (in text mode they are the console's progress lines, shown with -v)."""
    json_lines = json_mode()
    # a handler on stderr, or on stdout for JSON lines (what a container's log collector reads), unless the root
    # logger has handlers already (a test's capture)
    logging.basicConfig(stream=sys.stdout if json_lines else sys.stderr)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setFormatter(json_formatter() if json_lines else _Text(TEXT_FORMAT, datefmt="%H:%M:%S"))
        for old in [f for f in handler.filters if isinstance(f, _QuietPy4J)]:
            handler.removeFilter(old)
        if not verbose:
            handler.addFilter(_QuietPy4J())
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("openlineage").setLevel(logging.WARNING)
    # PySpark logs each analysis error with a Java stack; the cause reaches the user as one line instead
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    logging.getLogger("lakehouse.stage").setLevel(logging.DEBUG if json_lines or verbose else logging.WARNING)
