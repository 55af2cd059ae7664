"""The console of a command: what reaches the terminal is for people; Java stacks, Python tracebacks of libraries
and Rust panic reports go to a detail file.

A Spark JVM started by the command writes to the process's stderr (file descriptor 2), and so does a Rust panic
in delta-rs, before any Python code can catch it. The guard puts a pipe in place of descriptor 2 for the time of
the command (the JVM inherits it), and a thread passes each line on, except the lines of a Java stack trace
(`\tat ...`, `Caused by: ...`, `\t... 12 more`), a Python traceback with its chained ones, the report of a Rust
panic (from `... panicked at ...` to its closing `note:` line) and, unless `--verbose`, the warning lines of Spark,
the JVM and delta-rs, which are kept in the detail file (`LAKEHOUSE_LOG_FILE`, else a file under the temporary
folder). The command's own one-line error says what happened; the last stderr line names the detail file when
something was kept there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

JAVA_STACK = re.compile(rb"^(\tat |\s+at [\w$.<>/]+\(.*\)\s*$|\t\.\.\. \d+ more|Caused by: |Suppressed: )")
PANIC_START = re.compile(rb"panicked at ")
PANIC_END = re.compile(rb"^note: ")
PANIC_LIMIT = 400  # lines: a panic report without its closing note ends here
# a Python traceback written to descriptor 2 by a library (py4j's lost connection, a thread's death): from its
# first line through the exception line, with the chained tracebacks that follow it
PY_TRACEBACK = b"Traceback (most recent call last):"
PY_CHAIN = (b"During handling of the above exception", b"The above exception was the direct cause")
# warnings of the libraries underneath (Spark's log4j `HH:mm:ss WARN Logger:`, the JVM's `WARNING: ...`, delta-rs's
# `[time WARN  target]`): kept in the detail file, shown with --verbose. The product's own log lines say WARNING
# after their time and pass.
NOISE = re.compile(rb"^(\x1b\[[0-9;]*m)*\[?\S*\s*(\x1b\[[0-9;]*m)*WARN\b|^WARNING: ")


_ACTIVE: list[StderrGuard] = []


def keep_detail(text: str) -> bool:
    """Write `text` to the detail file of the guard in place (False when no guard is: the caller shows it)."""
    if not _ACTIVE or _ACTIVE[-1]._saved is None:
        return False
    for line in text.splitlines():
        _ACTIVE[-1]._keep(line.encode(errors="replace") + b"\n")
    return True


class StderrGuard:
    def __init__(self, detail: str | None = None, verbose: bool | None = None) -> None:
        self.verbose = os.environ.get("LAKEHOUSE_VERBOSE") == "1" if verbose is None else verbose
        self.quiet = 0  # library warnings kept in the detail file
        self.detail_path = Path(detail or os.environ.get("LAKEHOUSE_LOG_FILE") or Path(
            tempfile.gettempdir(), "lakehouse-logs", f"{dt.datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}.log"))
        self.kept = 0
        self._saved: int | None = None
        self._thread: threading.Thread | None = None
        self._detail: BinaryIO | None = None
        self._lock = threading.Lock()  # the pump thread and logging (keep_detail) both write the detail file
        # written into the pipe at the end of the command: once the pump reads it, every line written before it has
        # been passed on or kept, and the command need not wait for the pipe to close (the JVM holds it open)
        self._marker = f"\x1elakehouse-stderr-drained-{os.getpid()}-{id(self)}".encode()
        self._drained = threading.Event()

    def __enter__(self) -> StderrGuard:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no descriptor 2 (an embedding host): nothing to guard
            return self
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._saved = saved
        self._thread = threading.Thread(target=self._pump, args=(read,), name="stderr-guard", daemon=True)
        self._thread.start()
        _ACTIVE.append(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._saved is None:
            return
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        drain: int | None = None
        with contextlib.suppress(OSError):
            drain = os.dup(2)
        os.dup2(self._saved, 2)  # the pipe closes when the JVM, which holds it too, is gone
        if drain is not None:
            with contextlib.suppress(OSError):
                os.write(drain, self._marker + b"\n")
            os.close(drain)
        if self._thread is not None:
            self._drained.wait(timeout=2)
        if self.kept:
            os.write(self._saved, f"detail: {self.kept} line(s) of Java stacks, tracebacks or Rust panic reports in "
                                  f"{self.detail_path}\n".encode())
        if self._thread is None or not self._thread.is_alive():
            os.close(self._saved)  # else the JVM still writes: the thread passes it on until the process ends
            self._saved = None

    def _keep(self, line: bytes, warning: bool = False) -> None:
        with self._lock:
            self._write_detail(line, warning)

    def _write_detail(self, line: bytes, warning: bool) -> None:
        try:
            if self._detail is None:
                self.detail_path.parent.mkdir(parents=True, exist_ok=True)
                self._detail = open(self.detail_path, "ab")  # noqa: SIM115 (open for the command's time)
            self._detail.write(line)
            self._detail.flush()
        except OSError:  # a full disk must not stop the command: the line is dropped
            pass
        if warning:
            self.quiet += 1
        else:
            self.kept += 1

    def _pump(self, read: int) -> None:
        panic = 0
        traceback = ""  # "" outside a Python traceback, "frames" inside one, "after" past its exception line
        with os.fdopen(read, "rb", buffering=0) as source:
            pending = b""
            while chunk := source.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    if raw.endswith(self._marker):
                        if raw := raw[: -len(self._marker)]:
                            panic, traceback = self._line(raw, panic, traceback)
                        self._drained.set()
                        continue
                    panic, traceback = self._line(raw, panic, traceback)
            if pending:
                self._out(pending)
        self._drained.set()

    def _line(self, raw: bytes, panic: int, traceback: str) -> tuple[int, str]:
        """Pass one line on or keep it in the detail file; the state of a panic report or traceback it is in."""
        line = raw + b"\n"
        if panic or PANIC_START.search(line):
            panic = 0 if PANIC_END.match(line) or panic > PANIC_LIMIT else panic + 1
            self._keep(line)
        elif raw.startswith(PY_TRACEBACK) or traceback == "frames":
            # frames are indented; the first line that is not is the exception's
            traceback = "frames" if raw.startswith(PY_TRACEBACK) or raw[:1] in b" \t" else "after"
            self._keep(line)
        elif traceback == "after" and (not raw.strip() or raw.startswith(PY_CHAIN)):
            self._keep(line)  # a chained traceback follows
        elif JAVA_STACK.match(line):
            self._keep(line)
        elif not self.verbose and NOISE.match(line):
            self._keep(line, warning=True)
        else:
            traceback = ""
            self._out(line)
        return panic, traceback

    def _out(self, line: bytes) -> None:
        target = self._saved
        if target is None:
            return
        with contextlib.suppress(OSError):
            os.write(target, line)
