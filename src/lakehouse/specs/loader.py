"""Load every YAML spec under a conf directory into typed models, with file:line: field: message errors."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lakehouse.errors import SpecError
from lakehouse.specs.models import AggregationSpec, DatasetSpec


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key and sequence item."""


def _load_with_lines(text: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse YAML into plain Python objects plus a map from each key/item path to its line number."""
    lines: dict[tuple[Any, ...], int] = {}
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is None:
        return None, lines

    def build(n: yaml.Node, path: tuple[Any, ...]) -> Any:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            out = {}
            for key_node, value_node in n.value:
                # keys are names as written: YAML 1.1 would read `on:` or `yes:` as booleans
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else \
                    loader.construct_object(key_node, deep=True)
                lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = build(value_node, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, path + (i,)) for i, item in enumerate(n.value)]
        return loader.construct_object(n, deep=True)

    return build(node, ()), lines


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    """The line of the deepest part of a pydantic error location that exists in the YAML."""
    parts = tuple(loc)
    while parts:
        if parts in lines:
            return lines[parts]
        parts = parts[:-1]
    return lines.get((), 1)


def _field_name(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> str:
    # pydantic adds union tags (e.g. 'not_null') to loc; keep only the parts that are in the YAML
    shown: list[str] = []
    prefix: tuple[Any, ...] = ()
    for part in loc:
        if prefix + (part,) in lines or not shown:
            prefix = prefix + (part,)
            shown.append(str(part))
    return ".".join(shown) or "(document)"


def _known_fields() -> list[str]:
    """Every field name of every spec model (what a misspelt key is compared with)."""
    import inspect

    from pydantic import BaseModel

    from lakehouse.specs import dataset_checks, models, steps, vocabulary

    classes = [cls for _, cls in inspect.getmembers(models, inspect.isclass)]
    for registry in (vocabulary.REGISTRY, dataset_checks.REGISTRY, steps.REGISTRY):
        classes += [kind.model for kind in registry.unique()]
    names: set[str] = set()
    for cls in classes:
        if issubclass(cls, BaseModel):
            names.update(f.alias or n for n, f in cls.model_fields.items())
    return sorted(names)


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def _message(err: Any) -> str:
    """A pydantic error in the user's words: what is wrong with the value they wrote, and what would be right."""
    kind, ctx, loc = err["type"], err.get("ctx") or {}, err["loc"]
    field_name = str(loc[-1]) if loc else ""
    if kind == "union_tag_invalid":
        tags = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        key = str(ctx.get("discriminator", "")).strip("'")
        return f"unknown {key} {ctx.get('tag')!r}{_did_you_mean(str(ctx.get('tag')), tags)} (known: {', '.join(tags)})"
    if kind == "union_tag_not_found":
        return f"needs a {str(ctx.get('discriminator', '')).strip(chr(39))!r} key"
    if kind == "extra_forbidden":
        return f"unknown field {field_name!r}{_did_you_mean(field_name, _known_fields())}"
    if kind == "missing":
        return "required, but missing"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, not {err.get('input')!r}"
    bounds = {"less_than_equal": ("<=", "le"), "less_than": ("<", "lt"), "greater_than_equal": (">=", "ge"),
              "greater_than": (">", "gt")}
    if kind in bounds:
        op, key = bounds[kind]
        return f"must be {op} {ctx.get(key)}, not {err.get('input')!r}"
    message = str(err["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _parse_file(path: Path, model: type[DatasetSpec] | type[AggregationSpec], problems: list[str]
                ) -> DatasetSpec | AggregationSpec | None:
    try:
        data, lines = _load_with_lines(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problems.append(f"{path}:{line}: (yaml): {getattr(exc, 'problem', None) or exc}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}:1: (document): expected a mapping at the top level")
        return None
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(f"{path}:{_line_for(loc, lines)}: {_field_name(loc, lines)}: {_message(err)}")
        return None
    spec._source = str(path)
    spec._lines = lines
    return spec


@dataclass
class Catalog:
    """All datasets and aggregations of a conf directory, validated together."""

    conf_dir: Path
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    aggregations: dict[str, AggregationSpec] = field(default_factory=dict)

    def dataset_order(self) -> list[DatasetSpec]:
        """Datasets ordered so that every exists_in reference is loaded before the dataset that uses it."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order:
                return
            visiting.add(name)
            for dep in self.datasets[name].references():
                if dep in self.datasets and dep not in visiting:
                    visit(dep)
            visiting.discard(name)
            order.append(name)

        for name in sorted(self.datasets):
            visit(name)
        return [self.datasets[n] for n in order]

    def aggregations_from(self, dataset: str) -> list[AggregationSpec]:
        return [a for a in self.aggregations.values() if a.source_dataset == dataset]


def _cross_check(catalog: Catalog, problems: list[str]) -> None:
    for ds in catalog.datasets.values():
        for ref, where in ds.reference_locations():
            if ref not in catalog.datasets:
                problems.append(f"{ds.location(where)}: unknown dataset {ref!r} (known: "
                                f"{', '.join(sorted(catalog.datasets))})")
    for agg in catalog.aggregations.values():
        tables: list[tuple[tuple[Any, ...], str]] = [(("from",), agg.source_dataset)] + [
            (("joins", i, "table"), j.dataset) for i, j in enumerate(agg.joins)]
        for where, name in tables:
            if name not in catalog.datasets:
                problems.append(f"{agg.location(where)}: unknown dataset {name!r} (known: "
                                f"{', '.join(sorted(catalog.datasets))})")
        if all(name in catalog.datasets for _, name in tables):
            _check_joined_columns(catalog, agg, problems)


def _check_joined_columns(catalog: Catalog, agg: AggregationSpec, problems: list[str]) -> None:
    """A joined column whose name the fact (or an earlier join) already has would be lost or shadowed: a spec
    error naming the columns and the fix; so is a `select:` of a column the joined table does not have."""
    taken = {c.lower(): agg.source_dataset for c in catalog.datasets[agg.source_dataset].output_columns()}
    for i, join in enumerate(agg.joins):
        columns = catalog.datasets[join.dataset].output_columns()
        if any(k.lower() not in taken or k not in columns for k in join.on):
            continue  # a join key one side lacks: the resolver names it (validate-config)
        unknown = [c for c in join.select or [] if c not in columns]
        if unknown:
            problems.append(f"{agg.location(('joins', i, 'select'))}: joins.{i}.select: {join.dataset} has no column "
                            f"{', '.join(unknown)} (its columns: {', '.join(columns)})")
        brought = join.brought(columns)
        clash = [name for name in brought.values() if name.lower() in taken]
        if clash:
            owners = sorted({taken[c.lower()] for c in clash})
            problems.append(
                f"{agg.location(('joins', i))}: joins.{i}: joined column(s) {', '.join(clash)} of {join.dataset} clash with "
                f"those of {', '.join(owners)}; add `prefix: {join.dataset[:4]}_` to the join, or list the columns "
                "you need in `select:`")
        taken.update({name.lower(): join.dataset for name in brought.values()})


def load_catalog(conf_dir: str | Path) -> Catalog:
    """Parse conf_dir/datasets/*.yaml and conf_dir/aggregations/*.yaml; raise SpecError listing every problem."""
    conf = Path(conf_dir)
    problems: list[str] = []
    if not conf.is_dir():
        raise SpecError([f"{conf}:0: (conf dir): no such directory"])
    catalog = Catalog(conf_dir=conf)
    for kind, model, target in (("datasets", DatasetSpec, catalog.datasets),
                                ("aggregations", AggregationSpec, catalog.aggregations)):
        for path in sorted((conf / kind).glob("*.y*ml")):
            spec = _parse_file(path, model, problems)
            if spec is None:
                continue
            if spec.name in target:
                problems.append(f"{path}:{spec._lines.get(('name',), 1)}: name: duplicate {kind[:-1]} "
                                f"{spec.name!r} (also in {target[spec.name]._source})")
                continue
            target[spec.name] = spec  # type: ignore[assignment]  # model and target are paired above
    if not catalog.datasets and not problems:
        problems.append(f"{conf / 'datasets'}:0: (conf dir): no dataset specs found")
    if not problems:
        _cross_check(catalog, problems)
    if problems:
        raise SpecError(problems)
    return catalog
