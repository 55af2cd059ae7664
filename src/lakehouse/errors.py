"""Every error the product raises on purpose, in one place, and `describe` for the ones it did not.

    LakehouseError
    ├── ConfigError            the user's input is wrong; nothing ran (exit code 2)
    │   ├── SpecError          a YAML spec: each problem as `file:line: field: message`
    │   ├── SettingsError      an environment variable or a setting
    │   ├── UsageError         the command line
    │   └── SqlFragmentError   a SQL fragment of a spec that is not one expression
    ├── TableError             a Delta table operation, translated by each engine from its library's errors
    │   ├── CommitConflict     another writer committed first; every stage is idempotent, so it is retried
    │   ├── TableNotFound      no Delta table at the path (exit code 2 on the command line)
    │   └── VersionNotFound    the table has no such version (exit code 2)
    ├── DatasetFailed          a dataset must not reach silver this run; `reasons` say why (exit code 1)
    ├── EnvironmentFailure     a cause outside the data (permissions, space, limits, network, a dead JVM): the
    │                          dataset or run fails (exit code 1), nothing is recorded as a bad file, a rerun heals
    ├── LeaseUnavailable       another process writes the lake (lakehouse.lease); waited, gave up (exit code 1)
    ├── LeaseLost              this run's lease expired and was taken over (exit code 1)
    ├── LandingFailed          `land` could not upload a file, or its upload did not verify (exit code 1)
    └── StorageUnavailable     the S3 endpoint refuses connections or keeps failing (exit code 1); a missing
                               bucket or missing credentials are StorageMisconfigured, a ConfigError (exit code 2)

Spark reports a failed read as a Py4J error whose text is a Java stack trace; the cause a user can act on (a
corrupt block, a missing file) sits at the bottom of the chain of causes. `describe` finds it.
"""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from lakehouse.redaction import redact

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class LakehouseError(Exception):
    """Base of the product's own errors."""

    exit_code = EXIT_FAILED


class ConfigError(LakehouseError):
    """Wrong input from the user (spec, settings, command line): fix it and run again."""

    exit_code = EXIT_USAGE


class SpecError(ConfigError):
    """One or more spec problems; each line reads `file:line: field: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class SettingsError(ConfigError, ValueError):
    """A bad environment variable or setting."""


class UsageError(ConfigError):
    """A bad command line."""


class SqlFragmentError(ConfigError):
    """A SQL fragment of a spec that does not parse as one expression on its own."""

    def __init__(self, dataset: str, where: str, text: str, cause: str) -> None:
        self.dataset, self.where, self.text, self.cause = dataset, where, text, cause
        super().__init__(f"dataset {dataset}: {where} is not a SQL expression: {text!r}: {cause}")


class TableError(LakehouseError):
    """A Delta table operation failed; `path` is the table root."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


class CommitConflict(TableError):
    """Another writer committed to the table between this writer's read and its commit."""

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(path, f"{path}: a concurrent writer committed first ({cause})")


class TableNotFound(TableError):
    exit_code = EXIT_USAGE

    def __init__(self, path: str) -> None:
        super().__init__(path, f"no Delta table at {path}")


class VersionNotFound(TableError):
    exit_code = EXIT_USAGE

    def __init__(self, path: str, version: int, latest: int | None) -> None:
        self.version, self.latest = version, latest
        known = f"versions 0..{latest}" if latest is not None else "no versions"
        super().__init__(path, f"{path} has no version {version} ({known})")


class DatasetFailed(LakehouseError):
    """The dataset cannot be merged this run: its valid rows are held back and the run exits 1."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


class EnvironmentFailure(LakehouseError):
    """A cause outside the file's bytes (permissions, space, limits, I/O, network, a missing library): the dataset
    or the run fails and `--pending` tries again; the file is never recorded as a bad file."""

    def __init__(self, what: str, cause: str) -> None:
        self.what, self.cause = what, cause
        super().__init__(f"{cause} {what}")


class LeaseUnavailable(LakehouseError):
    """Another process held the lake's writer lease (lakehouse.lease) for longer than this one would wait."""


class LeaseLost(LakehouseError):
    """This process's lease expired and another writer took the lake (a stall longer than the lease's TTL)."""


class LandingFailed(LakehouseError):
    """A file that `lakehouse land` could not upload, or whose upload did not verify."""


class StorageUnavailable(LakehouseError):
    """The object store cannot be reached or used: the endpoint refuses connections, or keeps failing (exit 1)."""


class StorageMisconfigured(ConfigError):
    """The object store answers, but the settings do not fit it: no credentials, no such bucket (exit 2)."""


# errno values and message fragments (Python, Java, Rust, S3) that name a cause in the environment, not in a file's
# bytes; each with the words the one-line error uses
_ENV_ERRNOS = {
    errno.EACCES: "permission denied", errno.EPERM: "operation not permitted", errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file too large (a file-size limit?)",
    errno.EIO: "input/output error", errno.EROFS: "read-only file system", errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system", errno.ENOMEM: "out of memory",
    errno.ECONNREFUSED: "connection refused", errno.ECONNRESET: "connection reset",
    errno.ETIMEDOUT: "timed out", errno.EHOSTUNREACH: "host unreachable", errno.ENETUNREACH: "network unreachable",
}
_NATIVE = "a library failed to load (a native library missing, a full /tmp or a file-size limit?)"
_ENV_TEXT = (
    ("permission denied", "permission denied"), ("accessdeniedexception", "permission denied"),
    ("no space left", "no space left on device"),
    ("disk quota exceeded", "disk quota exceeded"), ("file too large", "file too large (a file-size limit?)"),
    ("read-only file system", "read-only file system"), ("input/output error", "input/output error"),
    ("too many open files", "too many open files"), ("unsatisfiedlinkerror", _NATIVE),
    ("native snappy library not available", _NATIVE), ("noclassdeffounderror", _NATIVE),
    ("could not initialize class", _NATIVE), ("exceptionininitializererror", _NATIVE),
    ("connection refused", "connection refused"), ("connection reset", "connection reset"),
    ("broken pipe", "connection reset"), ("connection closed before message completed", "connection reset"),
    ("error sending request", "connection failed"), ("incompletemessage", "connection reset"), ("slowdown", "S3 throttling (SlowDown)"),
    ("service unavailable", "service unavailable (503)"), ("(internalerror)", "S3 internal error (500)"),
    ("we encountered an internal error", "S3 internal error (500)"),
    ("500 internal server error", "S3 internal error (500)"), ("outofmemoryerror", "out of memory"),
    ("java gateway process exited", "the Spark JVM died"), ("answer from java side is empty", "the Spark JVM died"),
    ("error while sending or receiving", "the Spark JVM died"),
)


def jvm_death() -> str | None:
    """When this process started a Spark JVM that has since died: what it died of, in a few words."""
    context = getattr(sys.modules.get("pyspark"), "SparkContext", None)
    proc = getattr(getattr(context, "_gateway", None), "proc", None)
    code = proc.poll() if proc is not None else None
    if code is None:
        return None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = ": killed, out of memory?" if -code == signal.SIGKILL else f": {name}"
        return f"the Spark JVM died (exit {128 - code}{hint})"
    return f"the Spark JVM died (exit {code})"


def environment_cause(exc: BaseException) -> str | None:
    """When `exc` (or what caused it, Python or Java) comes from the environment rather than from a file's bytes,
    its cause in a few words ("permission denied", "no space left on device", ...); else None."""
    died = jvm_death()
    if died:
        return died
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, EnvironmentFailure):
            return current.cause
        code = getattr(current, "errno", None)
        if isinstance(current, OSError) and code in _ENV_ERRNOS:
            return _ENV_ERRNOS[code]
        if isinstance(current, ConnectionError | TimeoutError):
            return "connection failed" if not isinstance(current, TimeoutError) else "timed out"
        current = current.__cause__ or current.__context__
    text = " ".join(_texts(exc)).lower()
    for fragment, words in _ENV_TEXT:
        if fragment in text:
            return words
    return _NATIVE if _java_error(exc) else None


def _java_error(exc: BaseException) -> bool:
    """A java.lang.LinkageError among the Java causes (a class or native library that failed to load or to
    initialise): never a file's bytes. Other Errors can be (a corrupt page can raise an InternalError from an
    unsafe memory access, deeply nested input a StackOverflowError)."""
    for throwable in java_causes(exc):
        try:
            cls = throwable.getClass()
            while cls is not None:
                if str(cls.getName()) == "java.lang.LinkageError":
                    return True
                cls = cls.getSuperclass()
        except Exception:
            return False
    return False


def _texts(exc: BaseException) -> Iterator[str]:
    yield f"{type(exc).__name__}: {exc}"
    for throwable in java_causes(exc):
        try:
            yield f"{throwable.getClass().getSimpleName()}: {throwable.getMessage()}"
        except Exception:
            break


def exit_code(exc: BaseException) -> int:
    """The command line's exit code for an error: by class for the product's own, 1 for anything else."""
    return exc.exit_code if isinstance(exc, LakehouseError) else EXIT_FAILED


def java_causes(exc: BaseException) -> Iterator[Any]:
    """The Java throwables behind a Spark/Py4J error, outermost first (none for a Python error)."""
    throwable = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    seen = 0
    try:
        while throwable is not None and seen < 50:
            yield throwable
            throwable = throwable.getCause()
            seen += 1
    except Exception:  # the JVM is gone or the object is not a throwable
        return


def java_class_names(exc: BaseException) -> list[str]:
    """Simple class names of the Java causes of `exc`, outermost first."""
    names = []
    for throwable in java_causes(exc):
        try:
            names.append(str(throwable.getClass().getSimpleName()))
        except Exception:
            break
    return names


def describe(exc: BaseException) -> str:
    """The cause of `exc` in one line: the root Java cause for Spark errors, else the first line of the message;
    no AWS secret of this process in it (it is printed and kept in the run records)."""
    return redact(_describe(exc))


def _describe(exc: BaseException) -> str:
    died = jvm_death()
    if died and not isinstance(exc, LakehouseError):
        return died
    if isinstance(exc, LakehouseError):
        return " ".join(str(exc).split())[:500]
    causes = list(java_causes(exc))
    if causes:
        try:
            root = causes[-1]
            name, message = root.getClass().getSimpleName(), root.getMessage()
            text = f"{name}: {message}" if message else str(name)
            return " ".join(text.split())[:500]
        except Exception:
            pass
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[0]}".rstrip(": ")[:500]
