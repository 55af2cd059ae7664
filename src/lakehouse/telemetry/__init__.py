"""What a run tells the platform besides the console and the `_meta` tables.

- stage events: one log record per stage of each dataset (read, bronze, check, quarantine, silver), gold table and
  the run record (meta), with run id, dataset, run date, rows in and out, duration and status; a JSON object per
  line with LAKEHOUSE_LOG_FORMAT=json (`telemetry.logs`);
- Prometheus metrics pushed to a Pushgateway at the end of each run, with LAKEHOUSE_PUSHGATEWAY
  (`telemetry.metrics`);
- OpenLineage run events (START, then COMPLETE or FAIL) for the run and for each dataset and gold job, with OPENLINEAGE_URL
  or OPENLINEAGE_CONFIG (`telemetry.lineage`).

None of it can fail a run: a sink that raises is reported with one warning and left alone for the rest of the
process.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse.errors import describe

if TYPE_CHECKING:
    from lakehouse.results import DatasetOutcome, DayResult, GoldOutcome
    from lakehouse.specs.models import AggregationSpec, DatasetSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """One run of the daily job (one run date), as the sinks see it."""

    run_id: str
    run_date: dt.date
    started: dt.datetime  # UTC
    lake_root: str
    engine: str
    job: str = "daily"


class Sink:
    """Told what a run does as it happens; each method does nothing unless a sink overrides it."""

    name = "sink"

    def run_started(self, run: RunInfo) -> None:
        return None

    def dataset_started(self, run: RunInfo, spec: DatasetSpec, raw_folder: str) -> None:
        return None

    def dataset_finished(self, run: RunInfo, spec: DatasetSpec, outcome: DatasetOutcome,
                         error: BaseException | None, tables: Mapping[str, str]) -> None:
        return None

    def gold_started(self, run: RunInfo, agg: AggregationSpec) -> None:
        return None

    def gold_finished(self, run: RunInfo, agg: AggregationSpec, gold: GoldOutcome, error: BaseException | None,
                      tables: Mapping[str, str]) -> None:
        return None

    def meta_written(self, run: RunInfo, seconds: float, rows: int, error: BaseException | None) -> None:
        return None

    def run_finished(self, run: RunInfo, result: DayResult, finished: dt.datetime) -> None:
        return None


class Telemetry:
    """The configured sinks, each guarded: the first failure of a sink is one warning, and the sink is off."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.broken: set[str] = set()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Telemetry:
        from lakehouse.telemetry.stages import StageLog

        env = os.environ if env is None else env
        sinks: list[Sink] = [StageLog()]
        if env.get("LAKEHOUSE_PUSHGATEWAY"):
            from lakehouse.telemetry.metrics import PushgatewaySink

            sinks.append(PushgatewaySink(env["LAKEHOUSE_PUSHGATEWAY"], env.get("LAKEHOUSE_METRICS_JOB", "lakehouse")))
        if env.get("OPENLINEAGE_URL") or env.get("OPENLINEAGE_CONFIG") or env.get("OPENLINEAGE__TRANSPORT__TYPE"):
            from lakehouse.telemetry.lineage import LineageSink

            sinks.append(LineageSink(env.get("OPENLINEAGE_NAMESPACE", "lakehouse"), url=env.get("OPENLINEAGE_URL")))
        return cls(sinks)

    def _each(self, method: str, *args: Any) -> None:
        for sink in self.sinks:
            if sink.name in self.broken:
                continue
            try:
                getattr(sink, method)(*args)
            except Exception as exc:  # telemetry never fails a run
                self.broken.add(sink.name)
                log.warning("%s is off for the rest of this process: %s", sink.name, describe(exc))

    def run_started(self, run: RunInfo) -> None:
        self._each("run_started", run)

    def dataset_started(self, run: RunInfo, spec: DatasetSpec, raw_folder: str) -> None:
        self._each("dataset_started", run, spec, raw_folder)

    def dataset_finished(self, run: RunInfo, spec: DatasetSpec, outcome: DatasetOutcome,
                         error: BaseException | None, tables: Mapping[str, str]) -> None:
        self._each("dataset_finished", run, spec, outcome, error, tables)

    def gold_started(self, run: RunInfo, agg: AggregationSpec) -> None:
        self._each("gold_started", run, agg)

    def gold_finished(self, run: RunInfo, agg: AggregationSpec, gold: GoldOutcome, error: BaseException | None,
                      tables: Mapping[str, str]) -> None:
        self._each("gold_finished", run, agg, gold, error, tables)

    def meta_written(self, run: RunInfo, seconds: float, rows: int, error: BaseException | None = None) -> None:
        self._each("meta_written", run, seconds, rows, error)

    def run_finished(self, run: RunInfo, result: DayResult, finished: dt.datetime) -> None:
        self._each("run_finished", run, result, finished)
