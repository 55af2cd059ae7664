"""Errors as a person reads them: one line with the real cause, wherever the exception came from.

Spark reports a failed read as a Py4J error whose text is a Java stack trace; the cause a user can act on (a
corrupt block, a missing file) sits at the bottom of the chain of causes. `describe` finds it.
"""

from __future__ import annotations


def _java_root(throwable) -> str | None:
    """`Class: message` of the deepest cause of a Java throwable (through py4j)."""
    try:
        seen = 0
        while throwable.getCause() is not None and seen < 50:
            throwable = throwable.getCause()
            seen += 1
        name = throwable.getClass().getSimpleName()
        message = throwable.getMessage()
        return f"{name}: {message}" if message else name
    except Exception:  # the JVM is gone or the object is not a throwable
        return None


def describe(exc: BaseException) -> str:
    """The cause of `exc` in one line: the root Java cause for Spark errors, else the first line of the message."""
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    if java is not None:
        root = _java_root(java)
        if root:
            return " ".join(root.split())[:500]
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[0]}".rstrip(": ")[:500]
