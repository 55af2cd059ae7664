"""Where each table lives under the lake root."""

from __future__ import annotations

from dataclasses import dataclass


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])


def spark_uri(path: str) -> str:
    """Spark's Hadoop S3 connector answers to s3a://."""
    return "s3a://" + path[len("s3://"):] if path.startswith("s3://") else path


def arrow_uri(path: str) -> str:
    """pyarrow and delta-rs answer to s3://."""
    return "s3://" + path[len("s3a://"):] if path.startswith("s3a://") else path


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


@dataclass(frozen=True)
class LakeLayout:
    root: str
    staging_root: str | None = None

    def raw(self, source_path: str) -> str:
        if "://" in source_path or source_path.startswith("/"):
            return source_path.rstrip("/")
        return join(self.root, source_path)

    def bronze(self, dataset: str) -> str:
        return join(self.root, "bronze", dataset)

    def silver(self, dataset: str) -> str:
        return join(self.root, "silver", dataset)

    def quarantine(self, dataset: str) -> str:
        return join(self.root, "quarantine", dataset)

    def gold(self, table: str) -> str:
        return join(self.root, "gold", table)

    def meta(self, table: str) -> str:
        return join(self.root, "_meta", table)

    def staging(self, run_id: str, *parts: str) -> str:
        return join(self.staging_root or join(self.root, "_staging"), run_id, *parts)
