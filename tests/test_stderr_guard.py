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
    assert lines[:4] == ["12:00:00 WARN Spark: a warning", "ERROR Executor: task failed",
                         "java.io.IOException: File too large",
                         "error: no space left on device writing silver/sales"], lines
    assert lines[4].startswith("detail: 8 line(s)") and str(detail) in lines[4]
    assert len(lines) == 5
    kept = detail.read_text()
    assert "\tat java.io.FileOutputStream" in kept and "Already shut down" in kept and "rust_begin_unwind" in kept
