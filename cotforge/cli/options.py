"""Command-line options made from a pydantic config's fields (as litgpt makes its CLI from its dataclasses): the flag
from the field's name, the help from its description, the default stated from its default. `cotforge train` and
`cotforge sweep` take their trainer options from TrainConfig this way, so a setting is declared once."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _without_none(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1
    return args[0] if optional else annotation


def _cli_type(annotation: Any) -> type:
    """What the command line parses: the field's type without None; a list as one comma-separated string; a
    Literal as a string (the config names the choices when it refuses one)."""
    annotation = _without_none(annotation)
    return str if typing.get_origin(annotation) in (list, Literal) else annotation


def option(name: str, field: FieldInfo, default: Any) -> inspect.Parameter:
    """The option of one field; `default` is the value a run ends with when the flag is absent."""
    spec = (field.json_schema_extra or {}).get("cli", {}) if isinstance(field.json_schema_extra, dict) else {}
    flag = spec.get("flag", "--" + name.replace("_", "-"))
    kind = _cli_type(field.annotation)
    if kind is bool:
        flag = f"{flag}/--no-{flag[2:]}"
    names = [flag, *([spec["short"]] if "short" in spec else [])]
    if field.is_required():
        return inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[kind, typer.Option(*names, help=field.description)],
        )
    stated = spec.get("default") if default is None else _shown(default)
    help_text = f"{field.description}. Default: {stated}"
    annotation = Annotated[kind | None, typer.Option(*names, help=help_text)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def config_options(
    config: type[BaseModel], names: Iterable[str], defaults: Mapping[str, Any] | None = None
) -> list[inspect.Parameter]:
    """The options of `config`'s fields `names`; `defaults` replace the config's own where a command states one."""
    defaults = defaults or {}
    fields = config.model_fields
    return [option(name, fields[name], defaults.get(name, fields[name].default)) for name in names]


def given(config: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """The options given (not None) as the config's field values: comma-separated lists split."""
    result = {}
    for name, value in values.items():
        if value is None or name not in config.model_fields:
            continue
        if typing.get_origin(_without_none(config.model_fields[name].annotation)) is list:
            value = [part.strip() for part in str(value).split(",") if part.strip()]
        result[name] = value
    return result


def with_parameters(function: Callable[..., Any], parameters: list[inspect.Parameter]) -> Callable[..., Any]:
    """`function(**options)` with the signature typer reads its options from."""
    function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    function.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return function
