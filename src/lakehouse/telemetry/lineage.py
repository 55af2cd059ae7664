"""OpenLineage run events through the `openlineage-python` client and the transport it is configured with
(OPENLINEAGE_URL for HTTP, or OPENLINEAGE_CONFIG / OPENLINEAGE__TRANSPORT__* for file, console, Kafka...).

Jobs: `daily_aggregation` (one run per run date), with a child job per dataset (`daily_aggregation.<dataset>`) and
per gold table (`daily_aggregation.gold.<table>`) whose runs name the parent run. Each run gets START, then
COMPLETE or FAIL (with the error message and stack trace). Run ids are UUIDs derived from the product's run id
(uuid5), so the same run always has the same lineage id.

Datasets follow OpenLineage's naming: a local path is namespace `file` and the absolute path; `s3://bucket/key`
is namespace `s3://bucket` and the key. A dataset job reads the day's raw partition (input statistics: rows,
bytes, files; the row checks as data-quality assertions) and writes bronze, quarantine and silver (schema and
rows written); a gold job reads its silver tables and writes the gold table.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
)

from lakehouse.storage import arrow_uri, is_remote, local_path
from lakehouse.telemetry import RunInfo, Sink
from lakehouse.telemetry.stages import stack_of

if TYPE_CHECKING:
    from lakehouse.results import DatasetOutcome, DayResult, GoldOutcome
    from lakehouse.specs.models import AggregationSpec, DatasetSpec

PRODUCER = "urn:lakehouse:daily-aggregation"
JOB = "daily_aggregation"
_IDS = uuid.UUID("8f0e9a52-31c4-4b7e-9d55-3a0c6f1f2b10")  # the namespace of this product's lineage run ids


def dataset_name(path: str) -> tuple[str, str]:
    """(namespace, name) of a path by OpenLineage's naming conventions."""
    if is_remote(path):
        uri = arrow_uri(path)
        scheme, rest = uri.split("://", 1)
        bucket, _, key = rest.partition("/")
        return f"{scheme}://{bucket}", key.rstrip("/")
    return "file", local_path(path)


def run_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_IDS, "/".join(parts)))


def _schema(path: str) -> schema_dataset.SchemaDatasetFacet | None:
    """The Delta table's schema at `path` (None when there is no table yet)."""
    from lakehouse.tables.deltalog import open_table

    table = open_table(path)
    if table is None:
        return None
    import pyarrow as pa

    fields = pa.schema(table.schema().to_arrow())
    return schema_dataset.SchemaDatasetFacet(fields=[
        schema_dataset.SchemaDatasetFacetFields(name=f.name, type=str(f.type)) for f in fields])


def _output(path: str, rows: int | None) -> OutputDataset:
    namespace, name = dataset_name(path)
    facets: dict[str, Any] = {}
    schema = _schema(path)
    if schema is not None:
        facets["schema"] = schema
    out: dict[str, Any] = {}
    if rows is not None:
        out["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)
    return OutputDataset(namespace, name, facets=facets, outputFacets=out)


def _input(path: str, facets: dict[str, Any] | None = None, input_facets: dict[str, Any] | None = None,
           with_schema: bool = False) -> InputDataset:
    namespace, name = dataset_name(path)
    facets = dict(facets or {})
    if with_schema:
        schema = _schema(path)
        if schema is not None:
            facets["schema"] = schema
    return InputDataset(namespace, name, facets=facets, inputFacets=input_facets or {})


def _assertions(outcome: DatasetOutcome) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=[
        data_quality_assertions_dataset.Assertion(
            assertion=q.check, success=q.status != "fail", column=q.column, severity=q.criticality,
            actual=None if q.observed is None else str(q.observed), expected=q.threshold)
        for q in outcome.quality])


class LineageSink(Sink):
    name = "OpenLineage events"

    def __init__(self, namespace: str = "lakehouse", url: str | None = None,
                 client: OpenLineageClient | None = None) -> None:
        self.namespace = namespace
        # an HTTP endpoint given by URL, else whatever the client's own configuration says (file, console, ...)
        self.client = client or (OpenLineageClient(config={"transport": {"type": "http", "url": url}}) if url
                                 else OpenLineageClient())

    def _job(self, name: str) -> Job:
        return Job(namespace=self.namespace, name=name, facets={"jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="SPARK", jobType="JOB" if name == JOB else "TASK")})

    def _emit(self, state: RunState, run: RunInfo, job: str, run_id: str, *, inputs: list[InputDataset] | None = None,
              outputs: list[OutputDataset] | None = None, error: tuple[str, str | None] | None = None) -> None:
        facets: dict[str, Any] = {"nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=dt.datetime.combine(run.run_date, dt.time(), dt.UTC).isoformat())}
        if job != JOB:
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=run_uuid(run.run_id)),
                job=parent_run.Job(namespace=self.namespace, name=JOB))
        if error is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error[0], programmingLanguage="python", stackTrace=error[1])
        self.client.emit(RunEvent(
            eventType=state, eventTime=dt.datetime.now(dt.UTC).isoformat(), producer=PRODUCER,
            run=Run(runId=run_id, facets=facets), job=self._job(job), inputs=inputs or [], outputs=outputs or []))

    # ------------------------------------------------------------------ the run

    def run_started(self, run: RunInfo) -> None:
        self._emit(RunState.START, run, JOB, run_uuid(run.run_id))

    def run_finished(self, run: RunInfo, result: DayResult, finished: dt.datetime) -> None:
        failed = [o.dataset for o in result.datasets if o.status == "failed"] + [
            g.table for g in result.golds if g.status == "failed"]
        self._emit(RunState.FAIL if failed else RunState.COMPLETE, run, JOB, run_uuid(run.run_id),
                   error=(f"failed: {', '.join(failed)}", None) if failed else None)

    # ------------------------------------------------------------------ datasets

    def dataset_started(self, run: RunInfo, spec: DatasetSpec, raw_folder: str) -> None:
        self._emit(RunState.START, run, f"{JOB}.{spec.name}", run_uuid(run.run_id, spec.name),
                   inputs=[_input(raw_folder)])

    def dataset_finished(self, run: RunInfo, spec: DatasetSpec, outcome: DatasetOutcome,
                         error: BaseException | None, tables: Mapping[str, str]) -> None:
        files = outcome.raw_files
        folder = str(tables.get("raw") or "")
        statistics = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
            rowCount=outcome.rows_read, size=sum(int(getattr(f, "size", 0)) for f in files), fileCount=len(files))
        inputs = [_input(folder, {"dataQualityAssertions": _assertions(outcome)} if outcome.quality else None,
                         {"inputStatistics": statistics})] if folder else []
        rows = {"bronze": 0 if outcome.bronze_reused else outcome.rows_read,
                "quarantine": outcome.rows_quarantined, "silver": outcome.rows_to_silver}
        outputs = [_output(tables[layer], rows[layer]) for layer in ("bronze", "quarantine", "silver")
                   if layer in tables]
        failed = outcome.status == "failed"
        self._emit(RunState.FAIL if failed else RunState.COMPLETE, run, f"{JOB}.{spec.name}",
                   run_uuid(run.run_id, spec.name), inputs=inputs, outputs=outputs,
                   error=(outcome.message, stack_of(error)) if failed else None)

    # ------------------------------------------------------------------ gold

    def gold_started(self, run: RunInfo, agg: AggregationSpec) -> None:
        self._emit(RunState.START, run, f"{JOB}.gold.{agg.name}", run_uuid(run.run_id, "gold", agg.name))

    def gold_finished(self, run: RunInfo, agg: AggregationSpec, gold: GoldOutcome, error: BaseException | None,
                      tables: Mapping[str, str]) -> None:
        inputs = [_input(path, with_schema=True) for name, path in tables.items() if name != "gold"]
        failed = gold.status == "failed"
        self._emit(RunState.FAIL if failed else RunState.COMPLETE, run, f"{JOB}.gold.{agg.name}",
                   run_uuid(run.run_id, "gold", agg.name), inputs=inputs,
                   outputs=[_output(tables["gold"], gold.rows)],
                   error=(gold.message, stack_of(error)) if failed else None)
