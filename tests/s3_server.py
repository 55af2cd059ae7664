"""Servers the tests start on 127.0.0.1 in processes of their own, ended by their PID: a real S3 API (moto in
server mode), and whatever else a test needs (`local_server`)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_server(argv: list[str], ready_url: str, what: str) -> Iterator[None]:
    """Start `argv` (a server on 127.0.0.1), wait until `ready_url` answers, and end it by its PID afterwards."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{what} did not start") from None
                time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Start `moto.server` on a free port; yield its endpoint URL; stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with local_server([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], url + "/moto-api/",
                      "the moto S3 server"):
        yield url


def s3_env(endpoint: str, secret: str, key_id: str = "AKIATESTLAKEHOUSE01") -> dict[str, str]:
    """The AWS variables a process needs to reach the test server (credentials from the environment chain)."""
    return {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
