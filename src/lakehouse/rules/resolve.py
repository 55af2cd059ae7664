"""Resolve every column reference and SQL fragment of the specs against the declared schemas, before data moves.

`load_catalog` checks what can be checked without Spark (structure, names, types). This pass starts from each
dataset's declared schema, applies the cleaning steps one by one to an empty DataFrame (Spark analyses the plan:
an unknown column or a broken expression fails here, not at run time), compiles every row check against the
cleaned columns, types check arguments against the column they apply to, compiles regexes under Java's rules,
and builds each aggregation over empty silver tables of the datasets it reads. Every problem is reported as
`file:line: field: message`, all of them at once; what passes here runs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.errors import SpecError
from lakehouse.frames import empty_frame
from lakehouse.specs import dataset_checks, vocabulary
from lakehouse.specs import models as m
from lakehouse.specs.loader import Catalog
from lakehouse.sql import column

LINEAGE_FIELDS = [T.StructField("_source_file", T.StringType()), T.StructField("_partition_date", T.DateType()),
                  T.StructField("_run_id", T.StringType()), T.StructField("_ingested_at", T.TimestampType())]
SILVER_LINEAGE_FIELDS = [T.StructField("_source_file", T.StringType()), T.StructField("_source_date", T.DateType()),
                         T.StructField("_run_id", T.StringType()), T.StructField("_ingested_at", T.TimestampType()),
                         T.StructField("_row_hash", T.LongType())]
NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


def _quoted(names: str) -> list[str]:
    return [n.strip().strip("`").split(".")[-1].strip("`") for n in names.split(",") if n.strip()]


def explain(exc: Exception) -> str:
    """Spark's analysis error as one line in the user's words."""
    condition = ""
    params: dict[str, str] = {}
    try:
        condition = exc.getCondition() or ""  # type: ignore[attr-defined]
        params = dict(exc.getMessageParameters() or {})  # type: ignore[attr-defined]
    except Exception:  # an exception without Spark's error fields
        pass
    if condition.startswith("UNRESOLVED_COLUMN") and "objectName" in params:
        name = _quoted(params["objectName"])[0]
        proposal = _quoted(params.get("proposal", ""))
        hint = f" (did you mean {proposal[0]!r}?)" if proposal else ""
        return f"unknown column {name!r}{hint}"
    if condition.startswith("UNRESOLVED_ROUTINE") and "routineName" in params:
        return f"unknown function {params['routineName'].strip('`')}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[[A-Z_.]+\]\s*", "", text)
    text = re.sub(r"\s*SQLSTATE: \w+\.?", "", text).strip()
    if isinstance(exc, ParseException):
        return f"not a SQL expression: {text[0].lower()}{text[1:]}" if text else "not a SQL expression"
    return text


class _Resolver:
    def __init__(self, catalog: Catalog, spark: SparkSession) -> None:
        self.catalog = catalog
        self.spark = spark
        self.problems: list[str] = []
        self.silver: dict[str, T.StructType] = {}

    def problem(self, spec: m.Located, path: tuple[Any, ...], message: str) -> None:
        field = ".".join(str(p) for p in path) or "(document)"
        self.problems.append(f"{spec.location(path)}: {field}: {message}")

    def analysed(self, spec: m.Located, path: tuple[Any, ...], build: Callable[..., DataFrame]) -> Any:
        """`build()`'s DataFrame, analysed; None (and a problem recorded) when Spark cannot resolve it."""
        try:
            df = build()
            df.schema  # noqa: B018 (analysis happens here)
            return df
        except (AnalysisException, ParseException) as exc:
            self.problem(spec, path, explain(exc))
        except KeyError as exc:
            found = re.search(r"`([^`]+)`|'([^']+)'", str(exc))
            name = (found.group(1) or found.group(2)) if found else (exc.args[0] if exc.args else str(exc))
            self.problem(spec, path, f"unknown column {name!r}")
        except (ValueError, TypeError) as exc:
            self.problem(spec, path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return None

    def empty(self, schema: T.StructType) -> DataFrame:
        return empty_frame(self.spark, schema)

    # ------------------------------------------------------------------ datasets

    def dataset(self, spec: m.DatasetSpec) -> None:
        from lakehouse.rules.cleaning import step_transform
        from lakehouse.specs.steps import columns_read, kind_of

        source = spec.source_schema()
        levels = [T.StructField(n, T.StringType()) for n in spec.source.level_columns if n not in source.names]
        df = self.empty(T.StructType(list(source.fields) + levels + LINEAGE_FIELDS))
        for i, step in enumerate(spec.cleaning):
            name = step.step
            if kind_of(step).secret:
                # its secret comes from the environment at run time (validate-config may run without it): the
                # columns it reads must exist now
                missing = [c for c in columns_read(step) if c not in df.columns]
                if missing:
                    self.problem(spec, ("cleaning", i, name), f"unknown column {missing[0]!r}")
                continue
            argument = step.argument
            # a step of several entries ({column: expression}) is resolved entry by entry, in order, so a problem
            # names its entry
            parts = [((name, key), step.model_copy(update={name: {key: value}}))
                     for key, value in argument.items()] if isinstance(argument, dict) else [((name,), step)]
            for where, part in parts:
                transformed = self.analysed(spec, ("cleaning", i, *where),
                                            lambda df=df, part=part: step_transform(part)(df))
                if transformed is None:
                    return  # later steps would only repeat the consequences
                df = transformed
        self.checks(spec, df)
        self.dataset_checks(spec, df)
        if spec.target.merge_update_when:
            s, t = df.alias("s"), df.alias("t")
            self.analysed(spec, ("target", "merge_update_when"),
                          lambda: s.crossJoin(t).where(F.expr(spec.target.merge_update_when or "true")))
        business = [f for f in df.schema.fields if not f.name.startswith("_")]
        if spec.history is not None:
            changed = spec.history.changed_at
            start = df.schema[changed].dataType if changed else T.DateType()
            if not isinstance(start, T.DateType | T.TimestampType | T.TimestampNTZType):
                self.problem(spec, ("history", "changed_at"), f"{changed} is {start.simpleString()}, not a date or "
                                                              "timestamp")
            business += [T.StructField("valid_from", start), T.StructField("valid_to", start),
                         T.StructField("is_current", T.BooleanType())]
        self.silver[spec.name] = T.StructType(business + SILVER_LINEAGE_FIELDS)
        self.rule_tests(spec, {f.name: f.dataType for f in source.fields},
                        {f.name: f.dataType for f in df.schema.fields if not f.name.startswith("_")})

    def rule_tests(self, spec: m.DatasetSpec, raw: dict[str, T.DataType], silver: dict[str, T.DataType]) -> None:
        """A rule test's input rows name the declared columns and its expected silver rows the columns after
        cleaning: a misspelt column would otherwise be silently left out, or never compared."""
        for i, case in enumerate(spec.tests):
            for what, rows, known in (("rows", case.rows, raw), ("silver", case.silver or [], silver)):
                for j, row in enumerate(rows):
                    unknown = [c for c in row if c not in known]
                    if unknown:
                        self.problem(spec, ("tests", i, what, j), self.unknown(unknown[0], known))
                        break
            for name in case.references:
                if name not in spec.references():
                    self.problem(spec, ("tests", i, "references", name),
                                 f"{name!r} is not a dataset this spec's exists_in checks look up "
                                 f"({', '.join(spec.references()) or 'none'})")

    def checks(self, spec: m.DatasetSpec, df: DataFrame) -> None:
        from lakehouse.rules.checks import check_sql, check_user_sql_text, compile_check
        from lakehouse.specs.row_checks.relations import ref_column

        types = {f.name: f.dataType for f in df.schema.fields}
        now = dt.datetime.now(dt.UTC)
        pending: list[tuple[tuple[Any, ...], list[tuple[tuple[Any, ...], str]], list[Any], list[str]]] = []
        for i, check in enumerate(spec.checks):
            path = ("checks", i)
            problem = check_user_sql_text(self.spark, check)
            if problem:
                self.problem(spec, (*path, problem[0]), problem[1])
                continue
            targets = getattr(check, "targets", None) or getattr(check, "columns", None) or []
            unknown = [c for c in targets if c not in types]
            if unknown and not isinstance(check, m.Unique):
                self.problem(spec, (*path, "column" if getattr(check, "column", None) else "columns"),
                             self.unknown(unknown[0], types))
                continue
            if isinstance(check, m.Unique) and unknown:
                self.problem(spec, (*path, "columns"), self.unknown(unknown[0], types))
                continue
            self.arguments(spec, check, path, types)
            fragments = [((*path, name), text) for name, text in check_sql(check)]
            refs: list[Any] = []
            if isinstance(check, m.Reference):
                if not self.reference(spec, check, path):
                    continue
                refs = [F.lit(None).cast(types[c]).alias(ref_column(i, c)) for c in targets]
            compiled = compile_check(check, i, now)
            exprs = [f"{c.failed()} AS _f{i}_{k}" for k, c in enumerate(compiled)] + \
                [f"{c.message} AS _m{i}_{k}" for k, c in enumerate(compiled)]
            pending.append((path, fragments, refs, exprs))
        if not pending:
            return
        # every check at once first (one analysis); only when that fails is each analysed alone, to say which
        try:
            _ = df.select("*", *[r for _, _, refs, _ in pending for r in refs]).selectExpr(
                *[t for _, fragments, _, _ in pending for _, t in fragments],
                *[e for _, _, _, exprs in pending for e in exprs]).schema  # analysis happens here
            return
        except Exception:  # each check is analysed on its own below, which reports the problem
            pass
        for path, fragments, refs, exprs in pending:
            fragments_ok = True
            for where, text in fragments:
                fragments_ok &= self.analysed(spec, where, lambda text=text: df.selectExpr(text)) is not None
            if not fragments_ok:
                continue
            frame = df.select("*", *refs) if refs else df
            self.analysed(spec, path, lambda frame=frame, exprs=exprs: frame.selectExpr(*exprs))

    def unknown(self, name: str, types: dict[str, T.DataType]) -> str:
        import difflib

        close = difflib.get_close_matches(name, [c for c in types if not c.startswith("_")], n=1)
        return f"unknown column {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")

    def reference(self, spec: m.DatasetSpec, check: m.Reference, path: tuple[Any, ...]) -> bool:
        if check.in_batch_only or check.ref_dataset == spec.name:
            return True
        target = self.silver.get(check.ref_dataset or "")
        if target is None:
            return True  # the unknown dataset is reported by the loader; a failed one by its own problems
        if check.ref_column not in target.names:
            self.problem(spec, (*path, "ref"), f"{check.ref}: " + self.unknown(check.ref_column, {
                n: target[n].dataType for n in target.names}))
            return False
        return True

    def arguments(self, spec: m.DatasetSpec, check: m.RowCheck, path: tuple[Any, ...], types: dict[str, T.DataType]) -> None:
        """Check arguments typed against the column they apply to."""
        targets = getattr(check, "targets", [])
        if isinstance(check, m.Range):
            for bound in ("min", "max"):
                value = getattr(check, bound)
                for c in targets:
                    message = _bound_problem(value, types[c], c)
                    if message:
                        self.problem(spec, (*path, bound), message)
                        return
        elif isinstance(check, m.InSet | m.NotInSet):
            for c in targets:
                if isinstance(types[c], NUMERIC):
                    bad = [v for v in check.values if v is not None and not _is_number(v)]
                    if bad:
                        self.problem(spec, (*path, "values"), f"{bad[0]!r} is not a number (column {c} is "
                                                             f"{types[c].simpleString()})")
                        return
        elif isinstance(check, m.Regex):
            error = _java_regex_error(self.spark, check.pattern)
            if error:
                self.problem(spec, (*path, "pattern"), f"not a Java regular expression: {error}")
        needs = vocabulary.kind_of(check).needs
        if needs is not None:
            words, names = needs
            for c in targets:
                if types[c].typeName() not in names:
                    self.problem(spec, (*path, "column"), f"{check.check} needs {words}; {c} is "
                                                         f"{types[c].simpleString()}")
                    return

    def dataset_checks(self, spec: m.DatasetSpec, df: DataFrame) -> None:
        types = {f.name: f.dataType for f in df.schema.fields}
        for i, check in enumerate(spec.dataset_checks):
            kind = dataset_checks.kind_of(check)
            named = kind.named_columns(check)
            if not named:
                continue
            path = ("dataset_checks", i, kind.columns[0])
            unknown = [c for c in named if c not in types]
            if unknown:
                self.problem(spec, path, self.unknown(unknown[0], types))
            elif kind.needs is not None:
                words, names = kind.needs
                wrong = [c for c in named if types[c].typeName() not in names]
                if wrong:
                    self.problem(spec, path, f"{check.check} needs {words}; {wrong[0]} is "
                                             f"{types[wrong[0]].simpleString()}")

    # ------------------------------------------------------------------ aggregations

    def aggregation(self, spec: m.AggregationSpec) -> None:
        if spec.source_dataset not in self.silver or any(j.dataset not in self.silver for j in spec.joins):
            return  # unknown datasets are the loader's report; a dataset with problems has its own
        df = self.empty(self.silver[spec.source_dataset])
        df = df.select(*[column(c) for c in df.columns if not c.startswith("_")])
        for i, join in enumerate(spec.joins):
            dim = self.empty(self.silver[join.dataset])
            dim = dim.select(*[column(c) for c in dim.columns if not c.startswith("_")])
            missing = [c for c in join.on if c not in df.columns or c not in dim.columns]
            if missing:
                side = "from" if missing[0] not in df.columns else join.dataset
                self.problem(spec, ("joins", i, "on"), f"{side}: unknown column {missing[0]!r}")
                return
            if join.as_of is not None:
                if "valid_from" not in dim.columns:
                    self.problem(spec, ("joins", i, "as_of"), f"{join.dataset} keeps no history: as_of needs "
                                                              "`history: scd2` in its spec")
                    return
                if join.as_of not in df.columns:
                    self.problem(spec, ("joins", i, "as_of"),
                                 self.unknown(join.as_of, {f.name: f.dataType for f in df.schema.fields}))
                    return
            df = join.apply(df, dim)
        if spec.filter:
            filtered = self.analysed(spec, ("filter",), lambda: df.where(F.expr(spec.filter or "true")))
            if filtered is None:
                return
            df = filtered
        types = {f.name: f.dataType for f in df.schema.fields}
        for c in spec.group_by:
            if c not in types:
                self.problem(spec, ("group_by",), self.unknown(c, types))
                return
        if not isinstance(types[spec.date_column], T.DateType | T.TimestampType | T.StringType):
            self.problem(spec, ("date_column",), f"{spec.date_column} is {types[spec.date_column].simpleString()}, "
                                                 "not a date")
        grouped = df.groupBy(*[column(c) for c in spec.group_by])
        ok = True
        for name, expr in spec.measures.items():
            ok &= self.analysed(spec, ("measures", name), lambda expr=expr, name=name: grouped.agg(
                F.expr(expr).alias(name))) is not None
        if not ok:
            return
        out = grouped.agg(*[F.expr(e).alias(n) for n, e in spec.measures.items()])
        for name, expr in spec.derived.items():
            derived = self.analysed(spec, ("derived", name), lambda out=out, expr=expr, name=name: out.withColumn(
                name, F.expr(expr)))
            if derived is None:
                return
            out = derived


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bound_problem(value: Any, dtype: T.DataType, column: str) -> str | None:
    if value is None:
        return None
    kind = dtype.simpleString()
    if isinstance(dtype, NUMERIC):
        if not _is_number(value):
            return f"{value!r} is not a number (column {column} is {kind})"
    elif isinstance(dtype, T.DateType | T.TimestampType | T.TimestampNTZType):
        try:
            (dt.date if isinstance(dtype, T.DateType) else dt.datetime).fromisoformat(str(value))
        except ValueError:
            shape = "YYYY-MM-DD" if isinstance(dtype, T.DateType) else "YYYY-MM-DD[ HH:MM:SS]"
            return f"{value!r} is not a {kind} ({shape}; column {column} is {kind})"
    elif isinstance(dtype, T.StringType):
        return None
    else:
        return f"range does not apply to column {column} of type {kind}"
    return None


def _java_regex_error(spark: SparkSession, pattern: str) -> str | None:
    try:
        jvm: Any = spark._jvm
        jvm.java.util.regex.Pattern.compile(pattern)
    except Exception as exc:
        text = str(exc)
        found = re.search(r"PatternSyntaxException: (.*)", text)
        return (found.group(1) if found else text.splitlines()[0]).strip()
    return None


def resolve_catalog(catalog: Catalog, spark: SparkSession) -> None:
    """Raise SpecError listing every reference or fragment of the specs Spark cannot resolve."""
    import logging

    # PySpark logs every analysis error with its query context and Java stack; here they are expected answers
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    resolver = _Resolver(catalog, spark)
    for spec in catalog.dataset_order():
        resolver.dataset(spec)
    for aggregation in catalog.aggregations.values():
        resolver.aggregation(aggregation)
    if resolver.problems:
        raise SpecError(resolver.problems)
