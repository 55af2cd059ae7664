"""Where each table lives under the lake root."""

from __future__ import annotations

import os
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


def sweep(folder: str) -> None:
    """Delete a staging folder and everything under it, on local disk or object storage (absent: nothing)."""
    import pyarrow.fs as pafs

    uri = arrow_uri(folder)
    try:
        fs, base = pafs.FileSystem.from_uri(uri) if is_remote(uri) else (pafs.LocalFileSystem(),
                                                                          os.path.abspath(uri))
        if fs.get_file_info(base).type != pafs.FileType.NotFound:
            fs.delete_dir(base)
    except OSError:
        pass  # staging is scratch space: a folder that cannot be deleted now is deleted by the next sweep


def sweep_older_than(folder: str, hours: float) -> list[str]:
    """Delete the entries of `folder` not modified for `hours` (staging left by runs that were killed); returns
    their names."""
    import time

    import pyarrow.fs as pafs

    uri = arrow_uri(folder)
    fs, base = pafs.FileSystem.from_uri(uri) if is_remote(uri) else (pafs.LocalFileSystem(), os.path.abspath(uri))
    swept = []
    for entry in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=False)):
        newest = entry.mtime
        if entry.type == pafs.FileType.Directory:
            inside = fs.get_file_info(pafs.FileSelector(entry.path, recursive=True))
            stamps = [i.mtime for i in inside if i.mtime is not None]
            newest = max(stamps + ([entry.mtime] if entry.mtime is not None else []), default=None)
        if newest is not None and time.time() - newest.timestamp() > hours * 3600:
            sweep(f"{folder.rstrip('/')}/{entry.base_name}")
            swept.append(entry.base_name)
    return sorted(swept)


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

    def staging(self, run_id: str = "", *parts: str) -> str:
        """A run's staging folder (`run_id` empty: the staging root)."""
        return join(self.staging_root or join(self.root, "_staging"), *[p for p in (run_id, *parts) if p])
