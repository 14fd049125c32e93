"""Command-line options made from a pydantic model's fields (as litgpt makes its CLI from its dataclasses): the flag
from the field's name, the help from its description, the default stated from its default. A model in groups
(cotforge.schemas.groups) gives one option per setting of each group, by its flat name, the default from the group
the model holds when none is given. `cotforge train` takes its options from TrainConfig this way, `cotforge sweep`
from SweepSettings (the trainer's groups it shares included) and its run's own model, so a setting is declared
once."""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from cotforge.cli.common import fail, split_commas
from cotforge.schemas.groups import flat_fields, group_default


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Enum):  # a str Enum prints as ReasoningView.drop
        return str(value.value)
    if isinstance(value, list):  # as the option takes it
        return ",".join(map(_shown, value))
    return str(value)


def _without_none(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1
    return args[0] if optional else annotation


WEIGHT_ITEM = "SUBSET:WEIGHT"  # one item of a dict field (weights by subset) on the command line


def _cli_type(annotation: Any) -> Any:
    """What the command line parses: the field's type without None; a list as repeatable items, each of them
    comma-separated too; a Literal as a string (the model names the choices when it refuses one); a dict (weights by
    subset, as TrainConfig's mixture) as repeatable WEIGHT_ITEM items."""
    annotation = _without_none(annotation)
    origin = typing.get_origin(annotation)
    if origin in (dict, list):
        return list[str]
    return str if origin is Literal else annotation


def _cli_spec(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra.get("cli", {}) if isinstance(extra, dict) else {}


def _flag(name: str, field: FieldInfo) -> str:
    return _cli_spec(field).get("flag", "--" + name.replace("_", "-"))


def option(name: str, field: FieldInfo, default: Any, required: str | None = None) -> inspect.Parameter:
    """The option of one field; `default` is the value a run ends with when the flag is absent. `required`: the
    words saying when a field the model requires must be given, where the option itself may be left out (a group's
    options that its subcommands do without)."""
    spec = _cli_spec(field)
    flag = _flag(name, field)
    kind = _cli_type(field.annotation)
    if kind is bool:
        flag = f"{flag}/--no-{flag[2:]}"
    names = [flag, *([spec["short"]] if "short" in spec else [])]
    description, metavar = field.description, None
    if typing.get_origin(_without_none(field.annotation)) is dict:
        description, metavar = f"{description} ({WEIGHT_ITEM}; repeatable)", WEIGHT_ITEM
    if field.is_required() and required is None:
        return inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[kind, typer.Option(*names, help=description, metavar=metavar)],
        )
    stated = spec.get("default", None if default is None else _shown(default))
    help_text = f"{description}. {required}" if field.is_required() else f"{description}. Default: {stated}"
    annotation = Annotated[kind | None, typer.Option(*names, help=help_text, metavar=metavar)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def defaults_of(model: type[BaseModel]) -> dict[str, Any]:
    """Each setting's value when not given, by its flat name: from the group the model holds by default, else the
    field's own default."""
    found = {}
    for name, (group, field) in flat_fields(model).items():
        held = group_default(model.model_fields[group]) if group else None
        found[name] = field.default if held is None else getattr(held, name)
    return found


def config_options(
    model: type[BaseModel],
    names: Iterable[str] | None = None,
    *,
    skip: Iterable[str] = (),
    required: str | None = None,
) -> list[inspect.Parameter]:
    """The options of `model`'s settings `names` (every one but `skip`, when not named), groups walked; see
    `option` for `required`."""
    fields, defaults = flat_fields(model), defaults_of(model)
    chosen = [name for name in fields if name not in set(skip)] if names is None else list(names)
    return [option(name, fields[name][1], defaults[name], required) for name in chosen]


def given(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """The options given (not None) as the model's settings by their flat names: each list's items split at
    commas, SUBSET:WEIGHT items made a dict."""
    fields = flat_fields(model)
    result = {}
    for name, value in values.items():
        if value is None or name not in fields:
            continue
        field = fields[name][1]
        origin = typing.get_origin(_without_none(field.annotation))
        if origin is list:
            value = split_commas(value)
        elif origin is dict:
            value = parse_weights(_flag(name, field), split_commas(value))
        result[name] = value
    return result


def flags(*models: type[BaseModel]) -> dict[str, str]:
    """Each setting's flag by its flat name, for errors that name what the user typed."""
    return {name: _flag(name, field) for model in models for name, (_, field) in flat_fields(model).items()}


def parse_weights(flag: str, items: list[str]) -> dict[str, float]:
    """`--mix a:0.5 --mix b:0.5` as {a: 0.5, b: 0.5}; a malformed or repeated item is a usage error naming it (the
    config checks the weights themselves)."""
    weights: dict[str, float] = {}
    for item in items:
        name, _, weight = item.rpartition(":")
        try:
            value = float(weight)
        except ValueError:
            value = math.nan
        if not name or not math.isfinite(value):  # nan would pass the config's `weight <= 0` check
            raise fail(f"{flag} {item} is not {WEIGHT_ITEM} (e.g. {flag} native:0.5)")
        if name in weights:
            raise fail(f"{flag} {item} repeats subset {name}")
        weights[name] = value
    return weights


def with_parameters(
    function: Callable[..., Any], parameters: list[inspect.Parameter], declared_by: tuple[type[BaseModel], ...] = ()
) -> Callable[..., Any]:
    """`function(**options)` with the signature typer reads its options from; `declared_by`: the models whose
    settings are its options (a test holds a generated command to them)."""
    function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    function.declared_by = declared_by  # type: ignore[attr-defined]
    function.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return function
