"""Typed models of the YAML specs: datasets (source, schema, cleaning, checks, target) and aggregations.

Every model forbids unknown fields, so a misspelled key is an error with its file and line, not a silent default.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pyspark.sql import types as T

from lakehouse.specs.types import TypeParseError, parse_column

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _column_type(text: str) -> str:
    try:
        parse_column(str(text))
    except TypeParseError as exc:
        raise ValueError(str(exc)) from exc
    return text


ColumnType = Annotated[str, AfterValidator(_column_type)]
Identifier = Annotated[str, Field(pattern=IDENT)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Located(Spec):
    """A top-level spec that knows the file it came from and the line of each field."""

    _source: str = PrivateAttr(default="<memory>")
    _lines: dict = PrivateAttr(default_factory=dict)

    def location(self, path: tuple) -> str:
        parts = tuple(path)
        while parts and parts not in self._lines:
            parts = parts[:-1]
        return f"{self._source}:{self._lines.get(parts, 1)}"


# ---------------------------------------------------------------- source

DATE_PARTS = ("date", "yyyy", "mm", "dd")


class SourceSpec(Spec):
    format: Literal["csv", "json", "parquet"]
    path: str = Field(description="raw folder, relative to the lake root unless it has a scheme or is absolute")
    layout: str = Field(default="date={date}", description="partition folders of one day, e.g. 'date={date}' or "
                                                           "'year={yyyy}/month={mm}/day={dd}/hour={hour}'")
    files: list[str] | None = Field(default=None, min_length=1,
                                    description="name patterns of data files (default: by format)")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("layout")
    @classmethod
    def _layout(cls, v: str) -> str:
        names = re.findall(r"{([^}]*)}", v)
        dates = [n for n in names if n in DATE_PARTS]
        if "date" not in dates and not {"yyyy", "mm", "dd"} <= set(dates):
            raise ValueError("layout must place the day with {date} or {yyyy}/{mm}/{dd}, e.g. 'date={date}'")
        bad = [n for n in names if not re.match(IDENT, n)]
        if bad:
            raise ValueError(f"layout placeholder {{{bad[0]}}} is not a name (letters, digits, underscore)")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"layout names {{{repeated[0]}}} twice")
        if v.startswith("/") or "//" in v or ".." in v.split("/"):
            raise ValueError("layout is a relative folder path below the source path, e.g. 'date={date}'")
        return v.rstrip("/")

    @property
    def level_columns(self) -> list[str]:
        """Names of the layout's extra levels (`{hour}`, `{region}`), read as string columns."""
        return [n for n in re.findall(r"{(\w+)}", self.layout) if n not in DATE_PARTS]


# ---------------------------------------------------------------- row checks

class RowCheckBase(Spec):
    name: str | None = None
    criticality: Literal["error", "warn"] = "error"
    filter: str | None = Field(default=None, description="SQL condition: the check applies only where it holds")
    message: str | None = None


class OneOrMoreColumns(RowCheckBase):
    column: str | None = None
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _one_of(self):
        if bool(self.column) == bool(self.columns):
            raise ValueError("give exactly one of 'column' or 'columns'")
        return self

    @property
    def targets(self) -> list[str]:
        return [self.column] if self.column else list(self.columns or [])


class NotNull(OneOrMoreColumns):
    check: Literal["not_null"]


class NotEmpty(OneOrMoreColumns):
    check: Literal["not_empty"]


class Range(OneOrMoreColumns):
    check: Literal["range", "between"]
    min: float | int | str | None = None
    max: float | int | str | None = None
    inclusive: bool = True

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is None and self.max is None:
            raise ValueError("range needs 'min', 'max' or both")
        return self


class InSet(OneOrMoreColumns):
    check: Literal["in_set", "not_in_set"]
    values: list[Any] = Field(min_length=1)


class Regex(OneOrMoreColumns):
    check: Literal["regex"]
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return v


class Email(OneOrMoreColumns):
    check: Literal["email"]


class Phone(OneOrMoreColumns):
    check: Literal["phone"]


class Length(OneOrMoreColumns):
    check: Literal["length"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class ExistsIn(OneOrMoreColumns):
    check: Literal["exists_in"]
    ref: str = Field(description="'<dataset>.<column>' (that dataset's silver table) or 'batch.<column>' (this "
                                 "run's rows of the dataset being checked)")

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        parts = v.removeprefix("silver.").split(".")
        if len(parts) != 2 or not all(re.match(IDENT, p) for p in parts):
            raise ValueError("ref must look like '<dataset>.<column>' (e.g. 'products.product_id') or "
                             "'batch.<column>'")
        return v

    @property
    def in_batch_only(self) -> bool:
        return self.ref.split(".")[0] == "batch"

    @property
    def ref_dataset(self) -> str | None:
        """The dataset whose silver table is looked up; None for 'batch.<column>'."""
        return None if self.in_batch_only else self.ref.removeprefix("silver.").split(".")[0]

    @property
    def ref_column(self) -> str:
        return self.ref.removeprefix("silver.").split(".")[1]


class NotInFuture(OneOrMoreColumns):
    check: Literal["not_in_future"]
    tolerance_hours: float = 0


class NotOlderThan(OneOrMoreColumns):
    check: Literal["not_older_than"]
    days: float = Field(gt=0)


class Unique(RowCheckBase):
    check: Literal["unique"]
    columns: list[str] = Field(min_length=1, description="the combination that must be unique in the batch")


class Parseable(OneOrMoreColumns):
    check: Literal["parseable"]
    type: Literal["date", "timestamp"] = "timestamp"
    formats: list[str] = Field(min_length=1, description="Spark datetime patterns, tried in order")


class Castable(OneOrMoreColumns):
    check: Literal["castable"]
    type: ColumnType


class Compare(RowCheckBase):
    check: Literal["compare"]
    left: str
    op: Literal["<", "<=", ">", ">=", "=", "!="]
    right: str


class Expression(RowCheckBase):
    check: Literal["expression", "sql"]
    expression: str = Field(description="SQL boolean condition that valid rows satisfy")


RowCheck = Annotated[
    NotNull | NotEmpty | Range | InSet | Regex | Email | Phone | Length | ExistsIn | NotInFuture | NotOlderThan
    | Unique | Parseable | Castable | Compare | Expression,
    Field(discriminator="check"),
]


# ---------------------------------------------------------------- dataset checks

class DatasetCheckBase(Spec):
    name: str | None = None
    action: Literal["warn", "fail"] = "fail"


class RowCount(DatasetCheckBase):
    check: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class Completeness(DatasetCheckBase):
    check: Literal["completeness"]
    column: str
    min: float = Field(ge=0, le=1)


class Uniqueness(DatasetCheckBase):
    check: Literal["uniqueness"]
    columns: list[str] = Field(min_length=1)
    min: float = Field(ge=0, le=1)


class Freshness(DatasetCheckBase):
    check: Literal["freshness"]
    column: str
    max_age_hours: float = Field(gt=0, description="latest value at most this old, measured at the end of the "
                                                   "run date (UTC)")


class Statistic(DatasetCheckBase):
    check: Literal["statistic"]
    column: str
    stat: Literal["min", "max", "mean", "stddev"]
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is None and self.max is None:
            raise ValueError("statistic needs 'min', 'max' or both")
        return self


class RowCountChange(DatasetCheckBase):
    check: Literal["row_count_change"]
    max_change: float = Field(gt=0, description="largest allowed |rows - previous| / previous, previous being "
                                                "the rows read by the latest successful earlier run date")


class RequiredColumns(DatasetCheckBase):
    check: Literal["required_columns"]
    columns: list[str] = Field(min_length=1, description="columns that must be present in the raw data")


DatasetCheck = Annotated[RowCount | Completeness | Uniqueness | Freshness | Statistic | RowCountChange
                         | RequiredColumns, Field(discriminator="check")]


# ---------------------------------------------------------------- cleaning steps

class Step(Spec):
    step: str


class ParseSpec(Spec):
    type: Literal["date", "timestamp"] = "timestamp"
    formats: list[str] = Field(min_length=1)


class HashSpec(Spec):
    columns: list[str] = Field(min_length=1)
    key_env: str = Field(default="LAKEHOUSE_HASH_KEY", pattern=r"^[A-Z_][A-Z0-9_]*$",
                         description="environment variable holding the secret key (never the key itself)")


class Trim(Step):
    step: Literal["trim"]
    trim: list[str]


class Upper(Step):
    step: Literal["upper"]
    upper: list[str]


class Lower(Step):
    step: Literal["lower"]
    lower: list[str]


class Title(Step):
    step: Literal["title"]
    title: list[str]


class StandardizeColumnNames(Step):
    step: Literal["standardize_column_names"]
    standardize_column_names: bool = True


class Cast(Step):
    step: Literal["cast"]
    cast: dict[str, ColumnType]


class Coalesce(Step):
    step: Literal["coalesce"]
    coalesce: dict[str, list[str]] = Field(description="target: [SQL expressions tried in order]")


class ParseDates(Step):
    step: Literal["parse_dates"]
    parse_dates: dict[str, ParseSpec]


class MaskCard(Step):
    step: Literal["mask_card"]
    mask_card: list[str]


class Hash(Step):
    step: Literal["hash"]
    hash: HashSpec


class DedupSpec(Spec):
    columns: list[str] = Field(min_length=1, description="rows with equal values here are duplicates")
    keep_latest_by: str = Field(description="the row with the greatest value is kept (nulls count as oldest)")


class Dedup(Step):
    step: Literal["dedup"]
    dedup: DedupSpec


class FillNull(Step):
    step: Literal["fill_null"]
    fill_null: dict[str, Any]


class Derive(Step):
    step: Literal["derive"]
    derive: dict[str, str]


class Rename(Step):
    step: Literal["rename"]
    rename: dict[str, str]


class Drop(Step):
    step: Literal["drop"]
    drop: list[str]


class RegexReplace(Step):
    step: Literal["regex_replace"]
    regex_replace: dict[str, tuple[str, str]] = Field(description="column: [pattern, replacement]")


class MaskEmail(Step):
    step: Literal["mask_email"]
    mask_email: list[str]


CleaningStep = Annotated[
    Trim | Upper | Lower | Title | StandardizeColumnNames | FillNull | Derive | Rename | Drop | RegexReplace | Cast
    | Coalesce | ParseDates | MaskEmail | MaskCard | Hash | Dedup,
    Field(discriminator="step"),
]


def _tag_step(value: Any) -> Any:
    """`- trim: [a, b]` becomes {'step': 'trim', 'trim': [a, b]} so the step name discriminates the union."""
    if isinstance(value, dict) and "step" not in value:
        if len(value) != 1:
            return {"step": "/".join(map(str, value)) or "(empty)", **value}
        (name,) = value
        return {"step": name, **value}
    return value


# ---------------------------------------------------------------- dataset

class DatasetTarget(Spec):
    partition_by: list[str] = Field(default_factory=list)
    merge_update_when: str | None = Field(
        default=None, description="extra SQL condition (aliases s, t) for updating a matched silver row")


class DatasetSpec(Located):
    name: str = Field(pattern=IDENT)
    description: str | None = None
    source: SourceSpec
    columns: dict[Identifier, ColumnType] = Field(alias="schema", min_length=1)
    keys: list[str] = Field(min_length=1)
    sequence_by: str | None = None
    duplicates: Literal["keep_latest", "fail"] = Field(
        default="keep_latest", description="several rows with one key in a batch: keep the latest, or fail")
    on_new_columns: Literal["fail", "add", "ignore"] = "add"
    on_bad_file: Literal["reject", "fail"] = Field(
        default="reject", description="a raw file that cannot be read: set it aside (the rest loads) or fail")
    cleaning: list[Annotated[CleaningStep, Field()]] = Field(default_factory=list)
    checks: list[RowCheck] = Field(default_factory=list)
    dataset_checks: list[DatasetCheck] = Field(default_factory=list)
    target: DatasetTarget = Field(default_factory=DatasetTarget)

    @field_validator("cleaning", mode="before")
    @classmethod
    def _tag_steps(cls, v: Any) -> Any:
        return [_tag_step(item) for item in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _known_columns(self):
        known = set(self.output_columns())
        batch_refs = [c.ref_column for c in self.checks if isinstance(c, ExistsIn) and c.in_batch_only]
        dedup = [c for s in self.cleaning if isinstance(s, Dedup) for c in [*s.dedup.columns, s.dedup.keep_latest_by]
                 if c not in known and c not in self.columns]
        for where, cols in (("keys", self.keys), ("target.partition_by", self.target.partition_by),
                            ("sequence_by", [self.sequence_by] if self.sequence_by else []),
                            ("checks: exists_in ref batch", batch_refs), ("cleaning: dedup", dedup)):
            missing = [c for c in cols if c not in known]
            if missing:
                raise ValueError(f"{where} names unknown column(s) {missing}; columns after cleaning: "
                                 f"{sorted(known)}")
        return self

    def source_schema(self) -> T.StructType:
        """The typed schema the raw columns are cast to before cleaning."""
        fields = []
        for col, text in self.columns.items():
            dtype, nullable = parse_column(text)
            fields.append(T.StructField(col, dtype, nullable))
        return T.StructType(fields)

    def required_columns(self) -> list[str]:
        return [f.name for f in self.source_schema().fields if not f.nullable]

    def output_columns(self) -> list[str]:
        """Column names after the cleaning steps (derive adds, rename renames, drop removes)."""
        cols = list(self.columns)
        for step in self.cleaning:
            if isinstance(step, Derive | Coalesce):
                added = step.derive if isinstance(step, Derive) else step.coalesce
                cols += [c for c in added if c not in cols]
            elif isinstance(step, Rename):
                cols = [step.rename.get(c, c) for c in cols]
            elif isinstance(step, Drop):
                cols = [c for c in cols if c not in step.drop]
        return cols

    def has_masking(self) -> bool:
        return any(isinstance(s, MaskEmail | MaskCard | Hash) for s in self.cleaning)

    def standardizes_names(self) -> bool:
        return any(isinstance(s, StandardizeColumnNames) and s.standardize_column_names for s in self.cleaning)

    def hash_key_envs(self) -> list[str]:
        return [s.hash.key_env for s in self.cleaning if isinstance(s, Hash)]

    def references(self) -> list[str]:
        return [ref for ref, _ in self.reference_locations()]

    def reference_locations(self) -> list[tuple[str, tuple]]:
        return [(c.ref_dataset, ("checks", i, "ref")) for i, c in enumerate(self.checks)
                if isinstance(c, ExistsIn) and c.ref_dataset is not None]


# ---------------------------------------------------------------- aggregation

class Join(Spec):
    dataset: str = Field(alias="table")
    on: list[str] = Field(min_length=1)
    how: Literal["left", "inner"] = "left"

    @field_validator("dataset")
    @classmethod
    def _strip_layer(cls, v: str) -> str:
        return v.removeprefix("silver.")


class AggregationTarget(Spec):
    keys: list[str] | None = None
    partition_by: list[str] = Field(default_factory=list)


class AggregationSpec(Located):
    name: str = Field(pattern=IDENT)
    description: str | None = None
    source_dataset: str = Field(alias="from")
    date_column: str = Field(description="the source column whose dates this run touched; gold is recomputed "
                                         "for exactly those dates")
    joins: list[Join] = Field(default_factory=list)
    filter: str | None = None
    group_by: list[str] = Field(min_length=1)
    measures: dict[str, str] = Field(min_length=1)
    derived: dict[str, str] = Field(default_factory=dict)
    target: AggregationTarget = Field(default_factory=AggregationTarget)

    @field_validator("source_dataset")
    @classmethod
    def _strip_layer(cls, v: str) -> str:
        return v.removeprefix("silver.")

    @model_validator(mode="after")
    def _date_grouped(self):
        if self.date_column not in self.group_by:
            raise ValueError(f"date_column {self.date_column!r} must be one of group_by {self.group_by}")
        outputs = set(self.group_by) | set(self.measures) | set(self.derived)
        missing = [k for k in self.keys if k not in outputs]
        if missing:
            raise ValueError(f"target.keys names unknown column(s) {missing}")
        return self

    @property
    def keys(self) -> list[str]:
        return list(self.target.keys or self.group_by)
