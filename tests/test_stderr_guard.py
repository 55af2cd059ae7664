"""The command's console: Java stack lines and Rust panic reports written to descriptor 2 (by the JVM, by
delta-rs) are kept in the detail file; every other line reaches the terminal in order."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_stacks_and_panics_go_to_the_detail_file(tmp_path):
    detail = tmp_path / "detail.log"
    script = textwrap.dedent(f"""
        import os, subprocess, sys
        from lakehouse.telemetry.console import StderrGuard
        with StderrGuard({str(detail)!r}):
            os.write(2, b"12:00:00 WARN Spark: a warning\\n")
            # a child process (as the JVM is) inherits the guarded descriptor
            subprocess.run(["sh", "-c", "printf 'ERROR Executor: task failed\\\\njava.io.IOException: File too large\\\\n'"
                            " >&2; printf '\\\\tat java.io.FileOutputStream.writeBytes(Native Method)\\\\n"
                            "Caused by: x\\\\n\\\\t... 12 more\\\\n' >&2"])
            os.write(2, b"thread '<unnamed>' panicked at object_store/src/buffered.rs:369:41:\\nAlready shut down\\n"
                        b"stack backtrace:\\n   0: rust_begin_unwind\\nnote: Some details are omitted\\n")
            print("error: no space left on device writing silver/sales", file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[:3] == ["ERROR Executor: task failed",
                         "java.io.IOException: File too large",
                         "error: no space left on device writing silver/sales"], lines
    assert lines[3].startswith("detail: 8 line(s)") and str(detail) in lines[3]
    assert len(lines) == 4
    kept = detail.read_text()
    assert "12:00:00 WARN Spark: a warning" in kept  # a library's warning: in the file, not counted
    assert "\tat java.io.FileOutputStream" in kept and "Already shut down" in kept and "rust_begin_unwind" in kept


def test_library_warnings_leave_the_console_unless_verbose(tmp_path):
    """Spark's, the JVM's and delta-rs's warning lines go to the detail file (no `detail:` line for them alone);
    the product's own WARNING log lines and everything else pass; with verbose, the warnings pass too."""
    lines = [b"WARNING: Using incubator modules: jdk.incubator.vector",
             b"12:03:31 WARN Utils: Your hostname, vm, resolves to a loopback address",
             b"12:03:31 WARN NativeCodeLoader: Unable to load native-hadoop library",
             b"[2026-12-05T10:00:00Z WARN  object_store::aws] retrying",
             b"12:03:32 WARNING lakehouse.pipeline.bronze: dataset sales: rejected x.csv",
             b"  sales: ok, 10 read, 0 quarantined (warn: 1)"]
    written = b"".join(line + b"\n" for line in lines)
    for verbose in (False, True):
        detail = tmp_path / f"detail-{verbose}.log"
        script = textwrap.dedent(f"""
            import os
            from lakehouse.telemetry.console import StderrGuard
            with StderrGuard({str(detail)!r}, verbose={verbose}):
                os.write(2, {written!r})
        """)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        shown = done.stderr.splitlines()
        if verbose:
            assert shown == [line.decode() for line in lines] and not detail.exists()
        else:
            assert shown == [line.decode() for line in lines[4:]], shown
            assert detail.read_text().splitlines() == [line.decode() for line in lines[:4]]


def test_python_tracebacks_of_libraries_go_to_the_detail_file(tmp_path):
    """A chained Python traceback written to descriptor 2 (as py4j's logging does when the JVM dies under a
    collect), and a record py4j logs, leave the console; the lines around them pass, in order."""
    detail = tmp_path / "detail.log"
    script = textwrap.dedent(f"""
        import logging, os, sys
        from lakehouse.telemetry import logs
        from lakehouse.telemetry.console import StderrGuard
        with StderrGuard({str(detail)!r}):
            logs.configure()
            os.write(2, b"12:00:00 INFO lakehouse: before\\n")
            os.write(2, b"Traceback (most recent call last):\\n  File \\"ipc.py\\", line 52, in __init__\\n"
                        b"    self._open(source)\\n    ^^^^^^^^^^\\n"
                        b"pyarrow.lib.ArrowInvalid: Tried reading schema message, was null or length 0\\n\\n"
                        b"During handling of the above exception, another exception occurred:\\n\\n"
                        b"Traceback (most recent call last):\\n  File \\"clientserver.py\\", line 566\\n"
                        b"py4j.protocol.Py4JNetworkError: Error while sending or receiving\\n")
            record = logging.LogRecord("root", logging.ERROR, "/x/site-packages/py4j/java_gateway.py", 1060,
                                       "Exception while sending command.", None, None)
            logging.getLogger().handle(record)
            print("error: sales failed: the Spark JVM died (exit 137)", file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[:2] == ["12:00:00 INFO lakehouse: before", "error: sales failed: the Spark JVM died (exit 137)"]
    assert lines[2].startswith("detail: 12 line(s)") and len(lines) == 3, lines
    kept = detail.read_text()
    assert "ArrowInvalid" in kept and "Py4JNetworkError" in kept and "Exception while sending command." in kept


def test_a_child_holding_the_pipe_does_not_hold_the_command(tmp_path):
    """A JVM keeps the guarded descriptor open until the process ends: the guard's end still passes on every line
    written before it (the last one without its line break, a stack kept), in order, and knows it has (no wait
    for a pipe that stays open)."""
    detail = tmp_path / "detail.log"
    script = textwrap.dedent(f"""
        import os, subprocess, sys
        from lakehouse.telemetry.console import StderrGuard
        guard = StderrGuard({str(detail)!r})
        with guard:
            holder = subprocess.Popen(["sleep", "60"])  # inherits descriptor 2, as the JVM does
            for i in range(300):
                os.write(2, f"line {{i}}\\n".encode())
            os.write(2, b"\\tat org.apache.spark.Stack(Stack.java:1)\\n")
            os.write(2, b"no line break")
        print("", file=sys.stderr)
        print(f"after drained={{guard._drained.is_set()}} holder_alive={{holder.poll() is None}}", file=sys.stderr)
        holder.kill()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[:300] == [f"line {i}" for i in range(300)], lines[:5]
    assert lines[300] == "no line break", lines[300:]
    assert lines[301].startswith("detail: 1 line(s)"), lines[300:]
    assert lines[-1] == "after drained=True holder_alive=True", lines[300:]
