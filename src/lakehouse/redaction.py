"""Secrets kept out of what the product prints and stores: the values of the AWS secret variables of this process
are masked in error lines, log records and run records. Imports nothing of the project, so every floor can use it."""

from __future__ import annotations

import os

# environment variables that hold a secret: their values are masked wherever the product prints or stores text
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


def redact(text: str) -> str:
    """`text` with the values of the AWS secret variables of this process masked."""
    for name in SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 4 and value in text:
            text = text.replace(value, "***")
    return text
