"""What the row-check, dataset-check and cleaning-step registries share: a kind's spec model made from a function's keyword-only
arguments, the registry of kinds by name (aliases included), the tagged union a spec's `check:` is validated
against (as the registry is when the spec is loaded), and the docs cell that lists a kind's arguments.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field, PlainValidator, SerializeAsAny, TypeAdapter, create_model
from pydantic.fields import FieldInfo


class Kind(Protocol):
    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def model(self) -> type[BaseModel]: ...

    @property
    def arguments(self) -> list[str]: ...

    @property
    def module(self) -> str: ...


K = TypeVar("K", bound=Kind)


@dataclass
class Registry(Generic[K]):
    """The registered kinds of one vocabulary (`what`: "row check", "dataset check"), by every name they answer to."""

    what: str
    tag: str = "check"  # the spec field that names the kind (`check: range`, `step: trim`)
    kinds: dict[str, K] = field(default_factory=dict)
    version: int = 0

    def add(self, kind: K) -> None:
        taken = [n for n in kind.names if n in self.kinds and self.kinds[n].module != kind.module]
        if taken:
            raise ValueError(f"{self.what} {taken[0]!r} is registered already (by {self.kinds[taken[0]].module})")
        for n in kind.names:
            self.kinds[n] = kind
        self.version += 1

    def remove(self, name: str) -> None:
        """Take the kind `name` (and its aliases) out: a test's own kind, registered for the test only."""
        kind = self.kinds[name]
        for n in kind.names:
            del self.kinds[n]
        self.version += 1

    def kind_of(self, spec: BaseModel) -> K:
        """The registered kind a validated spec entry is one of."""
        return self.kinds[getattr(spec, self.tag)]

    def model(self, name: str) -> type[BaseModel]:
        """The spec model of the kind `name` (e.g. `model("range").model_validate({...})`)."""
        return self.kinds[name].model

    def unique(self) -> list[K]:
        """Each kind once, by its first name."""
        return sorted({id(k): k for k in self.kinds.values()}.values(), key=lambda k: k.names[0])

    def spec_type(self, base: type[BaseModel]) -> Any:
        """The annotation of a spec field holding one of these kinds: validated as the registered kind its
        tag names (pydantic's tagged union, so an unknown name is reported with the known ones)."""

        @functools.lru_cache(maxsize=8)
        def adapter(version: int) -> TypeAdapter[Any]:
            models = tuple(k.model for k in self.unique())
            union = models[0] if len(models) == 1 else typing.Union[models]  # noqa: UP007 (a tuple of types)
            tagged: Any = Annotated[union, Field(discriminator=self.tag)]
            return TypeAdapter(tagged)

        def validate(value: Any) -> Any:
            return value if isinstance(value, base) else adapter(self.version).validate_python(value)

        serialized: Any = SerializeAsAny[base]  # type: ignore[misc, valid-type]
        return Annotated[serialized, PlainValidator(validate)]


def check_names(names: tuple[str, ...], what: str) -> None:
    if not names or not all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names):
        raise ValueError(f"{what} names are lower_snake_case words: {names!r}")


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def model_of(fn: Callable[..., Any], names: tuple[str, ...], parent: type[BaseModel], doc: str, tag: str = "check"
             ) -> tuple[type[BaseModel], list[str]]:
    """The spec model of a kind whose arguments are `fn`'s keyword-only ones (types, defaults and pydantic
    `Field`s as written; an argument `parent` declares keeps the parent's field), with `<tag>: <one of names>`;
    and the argument names, in order."""
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {tag: (Literal[names], ...)}
    arguments = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind != p.KEYWORD_ONLY:
            continue
        arguments.append(p.name)
        if p.name in parent.model_fields:
            continue
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints.get(p.name, Any), default)
    model = create_model(_camel(names[0]), __base__=parent, __module__=fn.__module__, **fields)
    model.__doc__ = doc
    return model, arguments


def positional(fn: Callable[..., Any]) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind != p.KEYWORD_ONLY]


def arguments_text(kind: Kind, first: list[str] | None = None) -> str:
    """A docs cell: the kind's arguments, with the defaults worth stating."""
    parts = list(first or [])
    for name in kind.arguments:
        info: FieldInfo = kind.model.model_fields[name]
        default = info.get_default(call_default_factory=True)
        notes = []
        if typing.get_origin(info.annotation) is Literal:
            notes.append(", ".join(f"`{choice}`" for choice in typing.get_args(info.annotation)))
        if not info.is_required() and default not in (None, [], {}):
            notes.append(f"default {str(default).lower() if isinstance(default, bool) else default}")
        parts.append(f"`{name}`" + (f" ({'; '.join(notes)})" if notes else ""))
    return ", ".join(parts)


def names_text(kind: Kind) -> str:
    """A docs cell: the kind's name, and its aliases."""
    aliases = kind.names[1:]
    return f"`{kind.names[0]}`" + (f" (alias {', '.join(f'`{a}`' for a in aliases)})" if aliases else "")
