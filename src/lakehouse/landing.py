"""Landing: upload a local raw zone (the generator's output, an export) to object storage, keeping its layout.

Each file is uploaded with a SHA-256 checksum that the store verifies (per part for multipart uploads), and its
SHA-256 is kept in the object's metadata. An object already there with the same size and SHA-256 is skipped, so a
second landing of the same folder uploads nothing. Large files go up in parts (several at a time) with a progress
line now and then. Credentials come from boto3's standard chain; AWS_ENDPOINT_URL points at an S3-compatible
store.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakehouse.errors import EnvironmentFailure, LandingFailed, UsageError
from lakehouse.retry import with_retries
from lakehouse.storage import list_objects, s3_client, split_s3

MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
PROGRESS_EVERY_SECONDS = 5.0
SHA_KEY = "sha256"  # the object metadata entry holding the file's SHA-256 (hex)


@dataclass
class LandResult:
    uploaded: list[str] = field(default_factory=list)  # keys
    skipped: list[str] = field(default_factory=list)  # keys already there with the same content
    bytes_uploaded: int = 0
    seconds: float = 0.0


def local_files(folder: str) -> list[tuple[str, str]]:
    """(path, path relative to `folder` with /) of every regular file below `folder`, hidden dot-files left out."""
    out = []
    for base, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = os.path.join(base, name)
            if not name.startswith(".") and os.path.isfile(path):
                out.append((path, os.path.relpath(path, folder).replace(os.sep, "/")))
    return out


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


class _Progress:
    """boto3's transfer callback (called from its worker threads): a line at most every few seconds."""

    def __init__(self, key: str, size: int, tell: Callable[[str], None]) -> None:
        self.key, self.size, self.tell = key, size, tell
        self.done = 0
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, sent: int) -> None:
        with self.lock:
            self.done += sent
            now = time.monotonic()
            if now - self.last >= PROGRESS_EVERY_SECONDS and self.done < self.size:
                self.last = now
                self.tell(f"  {self.key}: {100 * self.done // max(self.size, 1)}% "
                          f"({self.done / 2**20:.0f} of {self.size / 2**20:.0f} MiB)")


def land(source: str, target: str, tell: Callable[[str], None] = lambda _: None, client: Any | None = None,
         multipart_threshold: int = MULTIPART_THRESHOLD, part_size: int = PART_SIZE) -> LandResult:
    """Upload every file below the local folder `source` to the s3:// prefix `target`, same relative paths."""
    from boto3.s3.transfer import TransferConfig

    if "://" in source:
        raise UsageError(f"land --from takes a local folder, not {source}")
    if not os.path.isdir(source):
        raise UsageError(f"land --from {source}: no such folder")
    bucket, prefix = split_s3(target)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    client = client or s3_client()
    started = time.perf_counter()
    present = {o.key: o for o in list_objects(target, client)}  # one paged listing, not a request per file
    config = TransferConfig(multipart_threshold=multipart_threshold, multipart_chunksize=part_size,
                            max_concurrency=4)
    result = LandResult()
    for path, relative in local_files(source):
        key = prefix + relative
        size = os.path.getsize(path)
        sha = sha256_of(path)
        there = present.get(relative)
        if there is not None and there.size == size and _sha_of(client, bucket, key) == sha:
            result.skipped.append(key)
            continue
        callback = _Progress(key, size, tell) if size >= multipart_threshold else None

        def upload(path: str = path, key: str = key, size: int = size, sha: str = sha, callback: Any = callback
                   ) -> None:
            client.upload_file(path, bucket, key, Config=config, Callback=callback,
                               ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": {SHA_KEY: sha}})
            _verify(client, bucket, key, size, sha, single_part=size < multipart_threshold)

        try:  # a dropped connection or a 5xx after the client's own tries: the file is sent again, whole
            with_retries(upload, f"uploading {path} to s3://{bucket}/{key}")
        except LandingFailed:
            raise
        except Exception as exc:
            why = exc.cause if isinstance(exc, EnvironmentFailure) else (
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise LandingFailed(f"upload of {path} to s3://{bucket}/{key} failed: {why}") from exc
        result.uploaded.append(key)
        result.bytes_uploaded += size
    result.seconds = time.perf_counter() - started
    return result


def _sha_of(client: Any, bucket: str, key: str) -> str | None:
    head = client.head_object(Bucket=bucket, Key=key)
    return (head.get("Metadata") or {}).get(SHA_KEY)


def _verify(client: Any, bucket: str, key: str, size: int, sha: str, single_part: bool) -> None:
    """The stored object has the file's size and SHA-256: for a single-part upload the store's own checksum of
    the object; for a multipart upload the store has checked each part's checksum as it arrived."""
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    stored = head.get("ChecksumSHA256")
    expected = base64.b64encode(bytes.fromhex(sha)).decode()
    if int(head["ContentLength"]) != size or (head.get("Metadata") or {}).get(SHA_KEY) != sha or (
            single_part and stored is not None and stored != expected):
        raise LandingFailed(f"s3://{bucket}/{key} does not match the file uploaded (size or SHA-256 differs)")
