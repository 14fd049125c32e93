"""Command-line options made from a pydantic config's fields (as litgpt makes its CLI from its dataclasses): the flag
from the field's name, the help from its description, the default stated from its default. `cotforge train` and
`cotforge sweep` take their trainer options from TrainConfig this way, so a setting is declared once."""

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


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Enum):  # a str Enum prints as ReasoningView.drop
        return str(value.value)
    return str(value)


def _without_none(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1
    return args[0] if optional else annotation


WEIGHT_ITEM = "SUBSET:WEIGHT"  # one item of a dict field (weights by subset) on the command line


def _cli_type(annotation: Any) -> Any:
    """What the command line parses: the field's type without None; a list as one comma-separated string; a
    Literal as a string (the config names the choices when it refuses one); a dict (weights by subset, as
    TrainConfig.mixture) as repeatable WEIGHT_ITEM items."""
    annotation = _without_none(annotation)
    origin = typing.get_origin(annotation)
    if origin is dict:
        return list[str]
    return str if origin in (list, Literal) else annotation


def _cli_spec(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra.get("cli", {}) if isinstance(extra, dict) else {}


def _flag(name: str, field: FieldInfo) -> str:
    return _cli_spec(field).get("flag", "--" + name.replace("_", "-"))


def option(name: str, field: FieldInfo, default: Any) -> inspect.Parameter:
    """The option of one field; `default` is the value a run ends with when the flag is absent."""
    spec = _cli_spec(field)
    flag = _flag(name, field)
    kind = _cli_type(field.annotation)
    if kind is bool:
        flag = f"{flag}/--no-{flag[2:]}"
    names = [flag, *([spec["short"]] if "short" in spec else [])]
    description, metavar = field.description, None
    if kind == list[str]:
        description, metavar = f"{description} ({WEIGHT_ITEM}; repeatable)", WEIGHT_ITEM
    if field.is_required():
        return inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[kind, typer.Option(*names, help=description, metavar=metavar)],
        )
    stated = spec.get("default") if default is None else _shown(default)
    help_text = f"{description}. Default: {stated}"
    annotation = Annotated[kind | None, typer.Option(*names, help=help_text, metavar=metavar)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def config_options(
    config: type[BaseModel], names: Iterable[str], defaults: Mapping[str, Any] | None = None
) -> list[inspect.Parameter]:
    """The options of `config`'s fields `names`; `defaults` replace the config's own where a command states one."""
    defaults = defaults or {}
    fields = config.model_fields
    return [option(name, fields[name], defaults.get(name, fields[name].default)) for name in names]


def given(config: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """The options given (not None) as the config's field values: comma-separated lists split, SUBSET:WEIGHT items
    made a dict."""
    result = {}
    for name, value in values.items():
        if value is None or name not in config.model_fields:
            continue
        field = config.model_fields[name]
        origin = typing.get_origin(_without_none(field.annotation))
        if origin is list:
            value = split_commas([str(value)])
        elif origin is dict:
            value = parse_weights(_flag(name, field), split_commas(value))
        result[name] = value
    return result


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


def with_parameters(function: Callable[..., Any], parameters: list[inspect.Parameter]) -> Callable[..., Any]:
    """`function(**options)` with the signature typer reads its options from."""
    function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    function.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return function
