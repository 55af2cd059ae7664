"""Where each table lives under the lake root."""

from __future__ import annotations

import os
from dataclasses import dataclass

from lakehouse.storage import arrow_uri, filesystem, is_remote, spark_uri

__all__ = ["LakeLayout", "arrow_uri", "is_remote", "join", "local_staging", "spark_uri", "sweep", "sweep_older_than"]


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])


def local_staging(root: str) -> str:
    """The local staging folder of a lake whose store Spark cannot write (one per lake root)."""
    import tempfile
    import uuid

    return os.path.join(tempfile.gettempdir(), "lakehouse-staging", uuid.uuid5(uuid.NAMESPACE_URL, root).hex[:12])


def sweep(folder: str) -> None:
    """Delete a staging folder and everything under it, on local disk or object storage (absent: nothing)."""
    import pyarrow.fs as pafs

    try:
        fs, base = filesystem(folder)
        if fs.get_file_info(base).type != pafs.FileType.NotFound:
            fs.delete_dir(base)
    except OSError:
        pass  # staging is scratch space: a folder that cannot be deleted now is deleted by the next sweep


def sweep_older_than(folder: str, hours: float) -> list[str]:
    """Delete the entries of `folder` not modified for `hours` (staging left by runs that were killed); returns
    their names."""
    import time

    import pyarrow.fs as pafs

    fs, base = filesystem(folder)
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
