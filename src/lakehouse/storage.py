"""Object storage: how each library the product uses reaches an `s3://` path (and a local one).

- pyarrow's filesystem (`filesystem`): raw files probed and read without a JVM, staging, the JVM-free lake view;
- delta-rs (`delta_options`): the rust engine's tables;
- boto3 (`s3_client`, `list_objects`): landing raw files, and raw listings with each object's ETag;
- Spark, which on the embedded default has no S3 connector (`spark_reads`): remote files Spark must read are
  copied to local disk first (`localize`), into a folder the caller sweeps.

Credentials come from each library's standard AWS chain (environment, shared profile, web identity, instance
role); the product never reads, stores or prints them. An S3-compatible store is reached through
AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3); an `http://` endpoint is allowed for delta-rs explicitly.

delta-rs (1.x) commits to S3 with a conditional put (`If-None-Match: *`) of the next log entry, so two writers
racing for one version cannot both win: the loser gets a commit conflict. AWS S3 and current MinIO, Ceph RGW and
Cloudflare R2 honour it; a store that ignores the condition is not safe for concurrent writers (see
docs/deploy.md).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow.fs as pafs

from lakehouse.errors import SettingsError

_SECRET_QUERY = re.compile(r"(access|secret|token|key|password|credential)", re.IGNORECASE)


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def local_path(path: str) -> str:
    return os.path.abspath(path[len("file://"):] if path.startswith("file://") else path)


def arrow_uri(path: str) -> str:
    """pyarrow, delta-rs and boto3 answer to s3://."""
    return "s3://" + path[len("s3a://"):] if path.startswith("s3a://") else path


def from_delta_uri(uri: str, table_uri: str | None = None) -> str:
    """A table's URI as delta-rs gives it (percent-encoded: `lake%20with%20space`), or one of its data files' URIs
    (with `table_uri`), as the path it names: what Spark's Hadoop paths and pyarrow's local and S3 filesystems
    take. Below the table root delta-rs lists the partition folders as they are on disk (already Hive-escaped,
    `id=a%5Cb`): only the root is decoded."""
    if table_uri is None:
        return unquote(uri)
    root = table_uri.rstrip("/")
    for prefix in (root, root.removeprefix("file://")):  # local files are listed without the scheme
        if uri.startswith(prefix + "/"):
            return unquote(prefix) + uri[len(prefix):]
    return uri


def spark_literal(path: str) -> str:
    """A file's path for Spark's readers, which take every path as a glob pattern: the pattern characters are
    escaped, so `a[1].csv` or a lake under `x {a,b} *?` is read as named (unescaped, Spark finds no such path)."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", spark_uri(path))


def spark_uri(path: str) -> str:
    """Spark's Hadoop S3 connector answers to s3a://."""
    return "s3a://" + path[len("s3://"):] if path.startswith("s3://") else path


def refuse_credentials(uri: str, what: str) -> None:
    """A URI with credentials in it (`s3://KEY:SECRET@bucket/...`, `?secret_key=...`) is refused: they would end
    up in logs, run records and table metadata. The message names neither."""
    if not is_remote(uri):
        return
    parts = urlsplit(uri)
    if "@" in parts.netloc or (parts.query and _SECRET_QUERY.search(parts.query)):
        scheme = parts.scheme or "s3"
        raise SettingsError(
            f"{what} holds credentials in the URI; give it as {scheme}://bucket/prefix and set the credentials "
            "through the AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role)")


def endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for `path` and the path within it (local paths made absolute)."""
    if not is_remote(path):
        return pafs.LocalFileSystem(), local_path(path)
    uri = arrow_uri(path)
    refuse_credentials(uri, "a storage path")
    if uri.startswith("s3://"):
        bucket_key = uri[len("s3://"):]
        return _s3_filesystem(endpoint(), _region()), bucket_key.rstrip("/")
    fs, inner = pafs.FileSystem.from_uri(uri)
    return fs, str(inner)


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


# whether delta-rs was given a remote table in this process: its runtime can then abort the interpreter as it exits
# (exit code 134 after the work is done and printed), so the command line leaves with os._exit (lakehouse.cli)
DELTA_RS_REMOTE = False

# attempts of each S3 request inside the clients (boto3, pyarrow; delta-rs retries on its own, up to 10 times),
# before a failure reaches the product's own retries (lakehouse.retry)
S3_ATTEMPTS = 5


@functools.lru_cache(maxsize=8)
def _s3_filesystem(url: str | None, region: str) -> pafs.S3FileSystem:
    options: dict[str, Any] = {"region": region,
                               "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS)}
    if url:
        parts = urlsplit(url)
        options.update(endpoint_override=parts.netloc + parts.path.rstrip("/"), scheme=parts.scheme or "https")
    return pafs.S3FileSystem(**options)


def delta_options(path: str) -> dict[str, str] | None:
    """delta-rs storage options for `path` (None for a local path): the endpoint, and plain http allowed when the
    endpoint is http. Credentials are left to delta-rs's own AWS chain."""
    global DELTA_RS_REMOTE
    if not is_remote(path):
        return None
    refuse_credentials(path, "a table path")
    DELTA_RS_REMOTE = True
    options = {"AWS_REGION": _region()}
    url = endpoint()
    if url:
        options["AWS_ENDPOINT_URL"] = url
        if url.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


def s3_client() -> Any:
    """A boto3 S3 client from the standard chain (AWS_ENDPOINT_URL honoured by boto3 itself), retrying throttling,
    5xx answers and dropped connections S3_ATTEMPTS times with backoff (the SDK's standard mode)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": S3_ATTEMPTS})
    return boto3.session.Session().client("s3", region_name=_region(), endpoint_url=endpoint(), config=config)


def check_bucket(uri: str) -> None:
    """Fail early, in one line, when the bucket of an s3:// `uri` cannot be used: no credentials, no such bucket,
    access denied (StorageMisconfigured, exit 2), or an endpoint that refuses connections or keeps failing
    (StorageUnavailable, exit 1; transient failures are retried first). One HEAD request."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    from lakehouse.errors import EnvironmentFailure, StorageMisconfigured, StorageUnavailable
    from lakehouse.retry import with_retries

    bucket, _ = split_s3(uri)
    where = endpoint() or "AWS S3"
    try:
        with_retries(lambda: s3_client().head_bucket(Bucket=bucket), f"reaching S3 endpoint {where}")
    except NoCredentialsError:
        raise StorageMisconfigured(
            f"no S3 credentials found for s3://{bucket} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE, or run with a role)") from None
    except (EnvironmentFailure, EndpointConnectionError) as exc:
        cause = exc.cause if isinstance(exc, EnvironmentFailure) else "connection refused"
        raise StorageUnavailable(f"S3 endpoint {where}: {cause} (bucket '{bucket}')") from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in ("404", "NoSuchBucket") or status == 404:
            raise StorageMisconfigured(f"bucket '{bucket}' does not exist (at {where})") from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
            raise StorageMisconfigured(f"access to bucket '{bucket}' denied (at {where}): check the credentials "
                                       "and the bucket policy") from None
        raise StorageUnavailable(f"S3 endpoint {where}: bucket '{bucket}': {code or status}") from None


def split_s3(uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of an s3:// URI."""
    parts = urlsplit(arrow_uri(uri))
    if parts.scheme != "s3" or not parts.netloc:
        raise SettingsError(f"{uri!r} is not an s3://bucket/prefix URI")
    refuse_credentials(uri, "an S3 URI")
    return parts.netloc, parts.path.lstrip("/")


@dataclass(frozen=True)
class RemoteObject:
    key: str  # relative to the listed prefix
    size: int
    etag: str
    modified: Any  # datetime (UTC)


def list_objects(uri: str, client: Any | None = None) -> Iterator[RemoteObject]:
    """Every object below `uri` (an s3:// prefix, taken as a folder), page by page."""
    bucket, prefix = split_s3(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    client = client or s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"][len(prefix):]
            if key and not key.endswith("/"):
                yield RemoteObject(key, int(item["Size"]), str(item["ETag"]).strip('"'), item["LastModified"])


# ---------------------------------------------------------------- Spark and remote files

def spark_reads(spark: Any, path: str) -> bool:
    """Whether Spark has a Hadoop filesystem for `path`'s scheme (s3a:// needs hadoop-aws on the classpath)."""
    if not is_remote(path):
        return True
    return _spark_has_scheme(spark, urlsplit(spark_uri(path)).scheme)


_SCHEMES: dict[tuple[int, str], bool] = {}


def _spark_has_scheme(spark: Any, scheme: str) -> bool:
    key = (id(spark), scheme)
    if key not in _SCHEMES:
        try:
            conf = spark._jsc.hadoopConfiguration()
            spark._jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, conf)
            _SCHEMES[key] = True
        except Exception:  # py4j wraps the UnsupportedFileSystemException / ClassNotFoundException
            _SCHEMES[key] = False
    return _SCHEMES[key]


def localize(remote: list[str], folder: str, relative_to: str | None = None) -> list[str]:
    """Copy remote files into the local `folder` for Spark to read; returns their local paths in order. Names are
    kept (an extension tells Spark the compression); with `relative_to`, the path below it is kept too (a table's
    partition folders), else each file gets its own numbered subfolder so equal names do not collide."""
    os.makedirs(folder, exist_ok=True)
    local = pafs.LocalFileSystem()
    out = []
    for i, path in enumerate(remote):
        fs, inner = filesystem(path)
        if relative_to is not None:
            target = os.path.join(folder, arrow_uri(path)[len(arrow_uri(relative_to).rstrip("/")) + 1:])
        else:
            target = os.path.join(folder, f"{i:06d}", inner.rsplit("/", 1)[-1])
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            partial = target + ".partial"
            pafs.copy_files(inner, partial, source_filesystem=fs, destination_filesystem=local)
            os.replace(partial, target)
        out.append(target)
    return out
