"""Extension points used from outside the product, with no product file changed: a row check added by a test
module through the public decorator (`lakehouse.specs.vocabulary.row_check`), named in a spec's YAML, validated,
run through a whole day and shown in the quarantine with its message, in the quality metrics, and (while
registered) in the docs table and the did-you-mean of an unknown check; a dataset check added the same way
(`lakehouse.specs.dataset_checks.dataset_check`), passing one day and failing the next; and a raw format
(tab-separated files named *.tab, registered with `lakehouse.sources.formats.register`) read end to end from a
spec that names it; and a cleaning step (`lakehouse.specs.steps.cleaning_step`) that adds a column a check then
reads."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import pytest
import yaml
from pydantic import Field
from pyspark.sql import functions as F

from lakehouse.api import Lakehouse
from lakehouse.errors import SpecError
from lakehouse.sample.retail import RetailGenerator
from lakehouse.settings import Settings
from lakehouse.sources import formats
from lakehouse.sources.probe import probe_csv
from lakehouse.sources.scans import scan_csv
from lakehouse.specs import dataset_checks, load_catalog, steps, vocabulary
from lakehouse.specs.dataset_checks import Batch, Verdict, dataset_check
from lakehouse.specs.models import DatasetSpec
from lakehouse.specs.row_checks.common import value_message
from lakehouse.specs.steps import Sample, cleaning_step
from lakehouse.specs.vocabulary import CheckContext, Failing, row_check
from lakehouse.sql import ident
from lakehouse.tables import select_engine
from lakehouse.tables.paths import LakeLayout

DAY = dt.date(2024, 7, 1)


@pytest.fixture
def divisible_by():
    """The check `divisible_by` registered for one test, then taken out of the registry again."""

    @row_check("divisible_by", "multiple_of", fails_when="the value is not a multiple of `by`",
               examples=["{check: divisible_by, column: quantity, by: 2}"])
    def check(column: str, ctx: CheckContext, *, by: Annotated[int, Field(gt=0)]) -> Failing:
        return Failing(f"{ident(column)} % {by} != 0", value_message(column, f"is not a multiple of {by}"))

    yield check
    vocabulary.REGISTRY.remove("divisible_by")


def _with_check(conf, text: str) -> None:
    path = conf / "datasets" / "sales.yaml"
    path.write_text(path.read_text().replace("checks:\n", f"checks:\n  - {text}\n", 1))


def test_a_check_registered_outside_the_product_runs_end_to_end(spark, tmp_path, conf_copy, divisible_by):
    _with_check(conf_copy, "{check: divisible_by, column: quantity, by: 2, criticality: warn}")
    root = tmp_path / "lake"
    RetailGenerator(root, days=1, rows_per_day=60, seed=5, end_date=DAY, products=8, customers=12, stores=3).write()
    lake = Lakehouse(Settings(lake_root=str(root), engine="rust", conf_dir=str(conf_copy)),
                     engine=select_engine(spark, LakeLayout(str(root)), "rust"))
    lake.validate()  # resolved against the schema like every built-in check
    (result,) = lake.run([DAY])
    assert not result.failed
    sales = next(o for o in result.datasets if o.dataset == "sales")
    silver = lake.read("silver/sales")
    odd = silver.where("quantity % 2 != 0").count()
    assert odd > 0  # the seeded day has odd quantities: the check has something to find
    metric = next(q for q in sales.quality if q.check == "divisible_by")
    # every odd quantity of the day fails it: those kept in silver (a warning keeps the row) and those quarantined
    # for another reason
    quarantined = [json.loads(r.record).get("quantity") for r in lake.read("quarantine/sales").collect()]
    assert (metric.column, metric.criticality) == ("quantity", "warn")
    assert metric.failed_rows == odd + sum(1 for q in quarantined if q is not None and int(q) % 2)
    # a warning keeps the row and records why in the quality metrics; the same check as an error quarantines
    _with_check(conf_copy, "{check: multiple_of, column: quantity, by: 2, name: even_quantity}")
    lake = Lakehouse(Settings(lake_root=str(root), engine="rust", conf_dir=str(conf_copy)),
                     engine=select_engine(spark, LakeLayout(str(root)), "rust"))
    (again,) = lake.run([DAY], reload=["sales"])
    assert not again.failed
    reasons = [e.message for r in lake.read("quarantine/sales").collect() for e in r.errors
               if e.check == "even_quantity"]
    assert reasons and all(m.startswith("quantity=") and m.endswith(" is not a multiple of 2") for m in reasons)
    assert lake.read("silver/sales").where("quantity % 2 != 0").count() == 0


def test_a_registered_check_is_validated_documented_and_suggested(conf_copy, divisible_by):
    _with_check(conf_copy, "{check: divisible_by, column: quantity, by: 0}")
    with pytest.raises(SpecError) as bad:
        load_catalog(conf_copy)
    assert "sales.yaml:29: checks.0.by: must be > 0, not 0" in str(bad.value)
    _with_check(conf_copy, "{check: divisibel_by, column: quantity, by: 3}")
    with pytest.raises(SpecError) as unknown:
        load_catalog(conf_copy)
    assert "unknown check 'divisibel_by'; did you mean 'divisible_by'?" in str(unknown.value)
    assert "| `divisible_by` (alias `multiple_of`) | column(s), `by` | the value is not a multiple of `by` |" \
        in vocabulary.table()


def _one_dataset_lake(spark, tmp_path, spec_text: str, files: dict[dt.date, dict[str, str]]):
    """A conf holding one dataset spec and a lake whose raw folder has `files` ({day: {file name: text}})
    under the spec's source path; returns the Lakehouse (rust engine), the spec's path and the conf folder."""
    conf = tmp_path / "conf"
    (conf / "datasets").mkdir(parents=True)
    (conf / "aggregations").mkdir()
    parsed = yaml.safe_load(spec_text)
    spec = conf / "datasets" / f"{parsed['name']}.yaml"
    spec.write_text(spec_text)
    root = tmp_path / "lake"
    for day, texts in files.items():
        folder = root / parsed["source"]["path"] / f"date={day}"
        folder.mkdir(parents=True)
        for file, text in texts.items():
            (folder / file).write_text(text)
    lake = Lakehouse(Settings(lake_root=str(root), engine="rust", conf_dir=str(conf)),
                     engine=select_engine(spark, LakeLayout(str(root)), "rust"))
    return lake, spec, conf


@pytest.fixture
def tab_format():
    """`format: tab`: delimited text with a tab between fields, in files named *.tab, built on the CSV probe and
    scan with the separator set; registered for one test."""

    def tabbed(spec: DatasetSpec) -> DatasetSpec:
        source = spec.source.model_copy(update={"options": {**spec.source.options, "sep": "\t"}})
        return spec.model_copy(update={"source": source})

    fmt = formats.register(formats.RawFormat(
        "tab", ("*.tab",), probe=lambda spec, f: probe_csv(tabbed(spec), f),
        scan=lambda spark, spec, paths, shape: scan_csv(spark, tabbed(spec), paths, shape)))
    yield fmt
    formats.unregister("tab")


READINGS = """\
name: readings
source: {format: tab, path: raw/readings}
schema: {reading_id: string not null, sensor: string, value: int}
keys: [reading_id]
checks:
  - {check: range, column: value, min: 0, max: 100}
"""


def test_a_format_registered_outside_the_product_runs_end_to_end(spark, tmp_path, tab_format):
    lake, _, conf = _one_dataset_lake(spark, tmp_path, READINGS, {DAY: {
        "a.tab": "reading_id\tsensor\tvalue\nr1\ts, north\t40\nr2\ts2\t140\nr3\ts3\tx\n",
        "b.csv": "reading_id,sensor,value\nr9,s9,1\n"}})  # b.csv is not a *.tab file: not this format's
    lake.validate()
    (result,) = lake.run([DAY])
    (readings,) = result.datasets
    assert (readings.rows_read, readings.rows_to_silver, readings.rows_quarantined) == (3, 1, 2)
    assert [r.asDict() for r in lake.read("silver/readings").select("reading_id", "sensor", "value").collect()] \
        == [{"reading_id": "r1", "sensor": "s, north", "value": 40}]  # a comma is a character, a tab separates
    reasons = sorted(e.message for r in lake.read("quarantine/readings").collect() for e in r.errors)
    assert reasons == ["value x is not a valid int", "value=140 must be between 0 and 100"]
    assert "b.csv" in " ".join(readings.skipped)
    formats.unregister("tab")
    with pytest.raises(SpecError, match="source.format: must be 'csv', 'json' or 'parquet', not 'tab'"):
        load_catalog(conf)
    formats.register(tab_format)


@pytest.fixture
def distinct_values():
    """The dataset check `distinct_values` (at least `min` distinct values of a column among the valid rows),
    registered for one test."""

    @dataset_check("distinct_values", observes="distinct non-null values of the column among valid rows",
                   examples=["{check: distinct_values, column: sensor, min: 3}"], columns=("column",),
                   needs=("a string column", ("string",)),
                   aggregate=lambda valid, *, column, **_: f"count(DISTINCT CASE WHEN {valid} THEN {ident(column)} "
                                                           f"END)")
    def check(batch: Batch, *, column: str, min: Annotated[int, Field(ge=1)]) -> Verdict:
        return Verdict(float(batch.aggregate or 0), (batch.aggregate or 0) >= min, f">= {min} distinct", column)

    yield check
    dataset_checks.REGISTRY.remove("distinct_values")


SENSORS = """name: sensors
source: {format: csv, path: raw/sensors}
schema: {reading_id: string not null, sensor: string, value: int}
keys: [reading_id]
checks:
  - {check: range, column: value, min: 0, max: 100}
dataset_checks:
  - {check: distinct_values, column: sensor, min: 3}
"""


def test_a_dataset_check_registered_outside_the_product_runs_end_to_end(spark, tmp_path, distinct_values):
    days = {DAY: "r1,s1,1\nr2,s2,2\nr3,s3,3\nr4,s4,400\n",  # three distinct sensors among valid rows: passes
            DAY + dt.timedelta(days=1): "r5,s1,5\nr6,s2,6\nr7,s3,700\n"}  # s3's row is invalid: two, fails
    lake, spec, conf = _one_dataset_lake(spark, tmp_path, SENSORS, {
        day: {"part.csv": "reading_id,sensor,value\n" + rows} for day, rows in days.items()})
    lake.validate()
    first, second = lake.run(sorted(days))
    metrics = [next(q for q in r.datasets[0].quality if q.check == "distinct_values") for r in (first, second)]
    assert [(q.status, q.observed, q.column) for q in metrics] == [("pass", 3.0, "sensor"), ("fail", 2.0, "sensor")]
    assert not first.failed and second.failed
    assert "dataset check distinct_values failed: observed 2; >= 3 distinct" in second.datasets[0].message
    # the failing day reached no silver row; the passing one did
    assert sorted(r.reading_id for r in lake.read("silver/sensors").collect()) == ["r1", "r2", "r3"]
    # validated against the schema as the built-in ones are, suggested and documented
    spec.write_text(SENSORS.replace("column: sensor, min: 3", "column: value, min: 3"))
    with pytest.raises(SpecError, match="dataset_checks.0.column: distinct_values needs a string column; value is int"):
        Lakehouse(lake.settings, engine=lake.engine).validate()  # a new Lakehouse reads the conf anew
    spec.write_text(SENSORS.replace("check: distinct_values", "check: distinct_value"))
    with pytest.raises(SpecError, match="unknown check 'distinct_value'; did you mean 'distinct_values'?"):
        load_catalog(conf)
    assert "| `distinct_values` | `column`, `min` | distinct non-null values of the column among valid rows |" \
        in dataset_checks.table()


def test_a_name_registered_twice_is_refused(divisible_by):
    with pytest.raises(ValueError, match="row check 'range' is registered already"):
        row_check("range", fails_when="x", examples=[])(lambda column, ctx: Failing("false", "''"))
    with pytest.raises(ValueError, match="dataset check 'row_count' is registered already"):
        dataset_check("row_count", observes="x", examples=[])(lambda batch: Verdict(None, True, "", None))


@pytest.fixture
def bucket_step():
    """The cleaning step `bucket` registered for one test: `- bucket: {value: 25}` adds `value_bucket`, the value
    rounded down to a multiple of 25."""

    @cleaning_step("bucket", argument="`{column: width}`", does="adds `<column>_bucket`: the value rounded down to "
                   "a multiple of the width", example="- bucket: {value: 25}",
                   leaves=lambda columns, widths: columns + [f"{c}_bucket" for c in widths],
                   sample=Sample("value int", [{"value": 60}], [{"value": 60, "value_bucket": 50}]))
    def bucket(df, *, bucket: dict[str, Annotated[int, Field(gt=0)]]):
        return df.withColumns({f"{c}_bucket": F.floor(F.col(c) / width) * width for c, width in bucket.items()})

    yield bucket
    steps.REGISTRY.remove("bucket")


BUCKETED = """\
name: readings
source: {format: csv, path: raw/readings}
schema: {reading_id: string not null, value: int}
keys: [reading_id]
cleaning:
  - bucket: {value: 25}
checks:
  - {check: range, column: value_bucket, max: 50}
"""


def test_a_cleaning_step_registered_outside_the_product_runs_end_to_end(spark, tmp_path, bucket_step):
    lake, spec, conf = _one_dataset_lake(spark, tmp_path, BUCKETED, {
        DAY: {"a.csv": "reading_id,value\nr1,10\nr2,60\nr3,99\n"}})
    lake.validate()  # the check on the column the step adds resolves: the step said what it leaves
    (result,) = lake.run([DAY])
    (readings,) = result.datasets
    assert (readings.rows_read, readings.rows_to_silver, readings.rows_quarantined) == (3, 2, 1)
    silver = {r.reading_id: r.value_bucket for r in lake.read("silver/readings").collect()}
    assert silver == {"r1": 0, "r2": 50}
    (bad,) = lake.read("quarantine/readings").collect()
    assert json.loads(bad.record)["reading_id"] == "r3" and [e.check for e in bad.errors] == ["range"]
    # validated at its line, suggested when misspelt, documented while registered
    spec.write_text(BUCKETED.replace("{value: 25}", "{value: 0}"))
    with pytest.raises(SpecError) as zero:
        load_catalog(conf)
    assert "readings.yaml:6: cleaning.0.bucket.value: must be > 0, not 0" in str(zero.value)
    spec.write_text(BUCKETED.replace("- bucket:", "- buckett:"))
    with pytest.raises(SpecError) as unknown:
        load_catalog(conf)
    assert "unknown step 'buckett'; did you mean 'bucket'?" in str(unknown.value)
    assert "| `bucket` | `{column: width}` | adds `<column>_bucket`" in steps.table()
