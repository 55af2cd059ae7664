"""Run settings from the environment: lake root, engine, conf directory, extra jars and Spark overrides.

Environment variables:
  LAKEHOUSE_ROOT          lake root, a local path or s3://bucket/prefix (default ./lake)
  LAKEHOUSE_ENGINE        auto | jvm | rust (default auto)
  LAKEHOUSE_CONF_DIR      folder holding datasets/ and aggregations/ (default ./conf)
  LAKEHOUSE_SPARK_JARS    comma-separated local jar paths added to spark.jars (Delta's jars for the jvm engine
                          on a machine without network access)
  LAKEHOUSE_SPARK_CONF    JSON object of Spark settings that override the defaults, e.g. '{"spark.driver.memory":"4g"}'
  LAKEHOUSE_STAGING       folder for intermediate Parquet (default <lake>/_staging)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from lakehouse.env import env_number
from lakehouse.errors import SettingsError

__all__ = ["Engine", "Settings", "SettingsError"]

Engine = Literal["auto", "jvm", "rust"]


# numeric settings (name -> the least value allowed); whole numbers where the least is 1
NUMERIC = {"LAKEHOUSE_BATCH_DAYS": 1, "LAKEHOUSE_RETRIES": 1, "LAKEHOUSE_LEASE_WAIT": 0,
           "LAKEHOUSE_SMALL_INPUT_BYTES": 0, "LAKEHOUSE_LOG_MAX_FILES": 1}


def project_home() -> Path | None:
    """The folder whose `conf/` and `lake/` the defaults name: the working directory or the nearest folder above it
    with a `conf/datasets` folder, else the project the package is installed from (an editable install: a notebook
    kernel started in notebooks/ or anywhere else); None when there is none."""
    cwd = Path.cwd()
    for folder in [cwd, *cwd.parents]:
        if (folder / "conf" / "datasets").is_dir():
            return folder
    installed = Path(__file__).resolve().parents[2]
    return installed if (installed / "conf" / "datasets").is_dir() else None


@dataclass(frozen=True)
class Settings:
    lake_root: str = "lake"
    engine: Engine = "auto"
    conf_dir: str = "conf"
    spark_jars: tuple[str, ...] = ()
    spark_conf: dict[str, str] = field(default_factory=dict)
    staging: str | None = None

    def __post_init__(self) -> None:
        from lakehouse.storage import refuse_credentials

        refuse_credentials(self.lake_root, "the lake root (LAKEHOUSE_ROOT)")
        if self.staging:
            refuse_credentials(self.staging, "the staging folder (LAKEHOUSE_STAGING)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        engine = env.get("LAKEHOUSE_ENGINE", "auto").strip().lower() or "auto"
        if engine not in ("auto", "jvm", "rust"):
            raise SettingsError(f"LAKEHOUSE_ENGINE={engine!r}: expected auto, jvm or rust")
        raw_conf = env.get("LAKEHOUSE_SPARK_CONF", "").strip()
        spark_conf: dict[str, str] = {}
        if raw_conf:
            try:
                parsed = json.loads(raw_conf)
            except json.JSONDecodeError as exc:
                raise SettingsError(f"LAKEHOUSE_SPARK_CONF is not valid JSON: {exc}") from exc
            if not isinstance(parsed, dict):
                raise SettingsError("LAKEHOUSE_SPARK_CONF must be a JSON object of Spark settings")
            spark_conf = {str(k): str(v) for k, v in parsed.items()}
        # the numeric settings read later, checked now: a bad value is one line before any work starts
        for name, minimum in NUMERIC.items():
            env_number(name, minimum, minimum, env)
        jars = tuple(j.strip() for j in env.get("LAKEHOUSE_SPARK_JARS", "").split(",") if j.strip())
        missing = [j for j in jars if "://" not in j and not os.path.exists(j)]
        if missing:
            raise SettingsError(f"LAKEHOUSE_SPARK_JARS names missing files: {missing}")
        home = project_home()
        base = "" if home is None or home == Path.cwd() else f"{home}/"
        return cls(
            lake_root=env.get("LAKEHOUSE_ROOT", "").rstrip("/") or f"{base}lake",
            engine=cast(Engine, engine),
            conf_dir=env.get("LAKEHOUSE_CONF_DIR") or f"{base}conf",
            spark_jars=jars,
            spark_conf=spark_conf,
            staging=env.get("LAKEHOUSE_STAGING") or None,
        )

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
