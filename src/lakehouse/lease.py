"""One writer per lake at a time: the writer lease.

Every command that writes the lake's tables (run in every mode, restore, optimize, vacuum, maintenance) holds the
lake's lease while it works; commands that only read (plan, history, read, quality, runs) never take it. A second
writer waits for the lease (LAKEHOUSE_LEASE_WAIT seconds, default 600, saying once who holds it), then fails with
exit code 1 and one line naming the holder. So two writing commands started together run one after the other,
and their tables are those of that sequential order, on both engines and on both kinds of storage: a check that
reads another table (`exists_in`) never sees a dependency half loaded by another process, and the jvm engine,
whose Delta log stores serialise commits within one JVM only, gets one writing process per lake.

- Local lake: an exclusive `flock` on `<lake>/_meta/_writer.lock`. The kernel releases it when the holder ends,
  however it ends (kill -9 included); the file holds who holds it (host, pid, command, since) for the message.
- S3 lake: lease objects `<lake>/_meta/_writer/<generation>.json`, each created with a conditional put
  (`If-None-Match: *`): of two writers racing for the next generation, exactly one creates it. The holder renews
  its object every LAKEHOUSE_LEASE_TTL/4 seconds (default TTL 120) and deletes it when done; a lease not renewed
  within its TTL (a holder that died) expires, and the next writer takes the next generation. A holder that finds
  a newer generation than its own has lost the lease (it stalled past the TTL) and stops before its next write.

The lease is re-entrant within a process: a command that holds it may call another writing step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lakehouse.env import env_number
from lakehouse.errors import LeaseLost, LeaseUnavailable
from lakehouse.storage import arrow_uri, is_remote, local_path, split_s3

log = logging.getLogger(__name__)

DEFAULT_WAIT_SECONDS = 600.0
DEFAULT_TTL_SECONDS = 120.0


def wait_seconds() -> float:
    return env_number("LAKEHOUSE_LEASE_WAIT", DEFAULT_WAIT_SECONDS)


def ttl_seconds() -> float:
    return env_number("LAKEHOUSE_LEASE_TTL", DEFAULT_TTL_SECONDS, 1)


def _holder(command: str) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "command": command,
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    return (f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('command') or 'a lakehouse command'}) "
            f"since {holder.get('since')}")


@dataclass
class _Held:
    count: int
    release: Callable[[], None]
    check: Callable[[], None]


_HELD: dict[str, _Held] = {}
_HELD_LOCK = threading.Lock()


def _key(lake_root: str) -> str:
    return arrow_uri(lake_root).rstrip("/") if is_remote(lake_root) else local_path(lake_root)


@contextlib.contextmanager
def writer_lease(lake_root: str, command: str, tell: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lake's writer lease for the block (waiting for it as configured)."""
    key = _key(lake_root)
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is not None:
            held.count += 1
    if held is None:
        release, check = (_acquire_s3 if is_remote(lake_root) else _acquire_local)(key, command, tell)
        with _HELD_LOCK:
            _HELD[key] = _Held(1, release, check)
    try:
        yield
    finally:
        with _HELD_LOCK:
            entry = _HELD[key]
            entry.count -= 1
            done = entry.count == 0
            if done:
                del _HELD[key]
        if done:
            entry.release()


def check_lease(lake_root: str) -> None:
    """Raise LeaseLost when this process held the lake's lease and another writer has taken it since (S3: the lease
    expired during a stall). A no-op when no lease is held (tests, notebooks calling the job directly)."""
    with _HELD_LOCK:
        held = _HELD.get(_key(lake_root))
    if held is not None:
        held.check()


def _waiting(tell: Callable[[str], None] | None, lake: str, holder: dict[str, Any] | None, wait: float) -> None:
    text = (f"waiting up to {wait:.0f} s for the writer lease of {lake}: held by {describe_holder(holder)}")
    if tell is not None:
        tell(text)
    else:
        log.warning(text)


def _unavailable(lake: str, holder: dict[str, Any] | None, wait: float) -> LeaseUnavailable:
    return LeaseUnavailable(
        f"the lake {lake} is being written by {describe_holder(holder)}; waited {wait:.0f} s for it "
        "(LAKEHOUSE_LEASE_WAIT); run again when it has finished")


# ---------------------------------------------------------------- local disk: flock

def _acquire_local(root: str, command: str, tell: Callable[[str], None] | None
                   ) -> tuple[Callable[[], None], Callable[[], None]]:
    import fcntl

    folder = os.path.join(root, "_meta")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "_writer.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    wait, deadline, told = wait_seconds(), None, False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_local(path)
                if deadline is None:
                    deadline = time.monotonic() + wait
                if time.monotonic() >= deadline:
                    raise _unavailable(root, holder, wait) from None
                if not told:
                    _waiting(tell, root, holder, wait)
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder(command)).encode(), 0)
    except BaseException:
        os.close(fd)
        raise

    def release() -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock

    return release, lambda: None


def _read_local(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            return dict(json.loads(f.read() or "null") or {}) or None
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- S3: generations created by conditional put

def _acquire_s3(root: str, command: str, tell: Callable[[str], None] | None
                ) -> tuple[Callable[[], None], Callable[[], None]]:
    from botocore.exceptions import ClientError

    from lakehouse.storage import s3_client

    client = s3_client()
    bucket, prefix = split_s3(root)
    folder = (prefix.rstrip("/") + "/" if prefix else "") + "_meta/_writer/"
    ttl, wait = ttl_seconds(), wait_seconds()
    deadline, told = time.monotonic() + wait, False
    while True:
        current = _newest_s3(client, bucket, folder)
        generation = 0
        if current is not None:
            number, body, modified = current
            generation = number + 1
            age = (dt.datetime.now(dt.UTC) - modified).total_seconds()
            if not body.get("released") and age < float(body.get("ttl", ttl)):
                if time.monotonic() >= deadline:
                    raise _unavailable(f"s3://{bucket}/{prefix}", body, wait)
                if not told:
                    _waiting(tell, f"s3://{bucket}/{prefix}", body, wait)
                    told = True
                time.sleep(min(1.0, max(0.1, wait / 50)))
                continue
        holder = {**_holder(command), "ttl": ttl}
        key = f"{folder}{generation:012d}.json"
        try:
            client.put_object(Bucket=bucket, Key=key, Body=json.dumps(holder).encode(), IfNoneMatch="*")
            break
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                continue  # another writer took this generation first: look again
            raise

    stop = threading.Event()
    lost: list[str] = []

    def renew() -> None:
        while not stop.wait(ttl / 4):
            try:
                newest = _newest_s3(client, bucket, folder)
                if newest is not None and newest[0] > generation:
                    lost.append(describe_holder(newest[1]))
                    return
                client.put_object(Bucket=bucket, Key=key, Body=json.dumps(holder).encode())
            except Exception as exc:  # a renewal that fails is tried again; the TTL allows several
                log.warning("renewing the writer lease %s failed: %s", key, exc)

    thread = threading.Thread(target=renew, name="lakehouse-lease", daemon=True)
    thread.start()

    def release() -> None:
        stop.set()
        thread.join(timeout=5)
        if not lost:
            with contextlib.suppress(Exception):
                client.delete_object(Bucket=bucket, Key=key)

    def check() -> None:
        if lost:
            raise LeaseLost(f"the writer lease of s3://{bucket}/{prefix} expired while this run stalled and was "
                            f"taken by {lost[0]}; this run stops here (run again)")

    return release, check


def _newest_s3(client: Any, bucket: str, folder: str) -> tuple[int, dict[str, Any], dt.datetime] | None:
    """The highest lease generation: (number, its holder record, when it was last written), or None."""
    newest: tuple[int, str] | None = None
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for item in page.get("Contents", []):
            name = item["Key"][len(folder):]
            if name.endswith(".json") and name[:-5].isdigit():
                number = int(name[:-5])
                if newest is None or number > newest[0]:
                    newest = (number, item["Key"])
    if newest is None:
        return None
    try:
        obj = client.get_object(Bucket=bucket, Key=newest[1])
    except Exception:  # released (deleted) between the listing and the read: the generation is free
        return (newest[0], {"released": True}, dt.datetime.now(dt.UTC))
    try:
        body = dict(json.loads(obj["Body"].read()))
    except ValueError:
        body = {}
    return newest[0], body, obj["LastModified"]


def command_line() -> str:
    """This process's command, for the holder record: `lakehouse run --pending`, `daily_aggregation.py ...`."""
    argv = [os.path.basename(sys.argv[0]) if sys.argv else "python", *sys.argv[1:]]
    if argv[0] in ("cli.py", "__main__.py"):
        argv[0] = "lakehouse"
    return " ".join(argv)[:200]
