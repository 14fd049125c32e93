"""Load a recipe from YAML (a file or a built-in name) into a validated Recipe, with readable errors."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cotforge.safety.names import UnsafeName, path_inside
from cotforge.safety.redact import shown_value
from cotforge.safety.yamltext import YamlError, load_plain_yaml
from cotforge.schemas.guides import CustomGuides
from cotforge.schemas.recipe import Recipe

BUILTIN_PACKAGE = "cotforge.recipes.builtin"


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file, the field and what was expected."""


def parse_yaml(text: str, origin: str) -> Any:
    """YAML text as plain Python data; a syntax error, a repeated key, an alias or a tag is a RecipeError naming the
    line."""
    try:
        return load_plain_yaml(text)
    except YamlError as error:
        raise RecipeError(f"{origin}: {error}") from None


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif "[" in str(part):
            continue  # pydantic's names for validator wrappers mean nothing to a user
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def format_validation_error(
    error: ValidationError,
    origin: str,
    kind: str = "recipe",
    show_values: bool = True,
    flags: Mapping[str, str] | None = None,
) -> str:
    """One line per problem: `origin: field.path: message (got value)`; the value only where `show_values`; a
    field named in `flags` shown by its flag instead (`--lr` for optimisation.learning_rate)."""
    count = error.error_count()
    lines = [f"{origin}: invalid {kind} ({count} problem{'s' if count > 1 else ''})"]
    for item in error.errors():
        got = item.get("input")
        field = _field_path(item["loc"])
        plain = show_values and not isinstance(got, (dict, list)) and got is not None
        value = shown_value(field, got) if plain else None
        shown = "" if value is None else f" (got {value})"  # never a value that looks secret
        message = item["msg"].removeprefix("Value error, ")
        named = [flags[part] for part in item["loc"] if flags and isinstance(part, str) and part in flags]
        lines.append(f"  {named[-1] if named else field}: {message}{shown}")
    return "\n".join(lines)


def builtin_recipes() -> dict[str, str]:
    """Built-in recipe names and their descriptions."""
    found = {}
    for entry in sorted(resources.files(BUILTIN_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
            found[entry.name.removesuffix(".yaml")] = str(data.get("description", ""))
    return found


def _read(name_or_path: str | Path) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.is_file():
        try:
            return str(path), path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise RecipeError(f"{path}: not UTF-8 text (byte {error.start}); save the recipe as UTF-8") from None
        except OSError as error:
            raise RecipeError(f"{path}: cannot read it ({error.strerror})") from None
    name = str(name_or_path)
    if name in builtin_recipes():
        return f"built-in recipe {name}", resources.files(BUILTIN_PACKAGE).joinpath(f"{name}.yaml").read_text()
    raise RecipeError(f"{name}: no such recipe file, and no built-in recipe of that name (see `cotforge recipes`)")


def parse_recipe(data: Any, origin: str) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{origin}: a recipe must be a YAML mapping, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise RecipeError(format_validation_error(error, origin)) from None


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A recipe from a YAML file, or a built-in recipe by name. `guides: FILE` names a YAML file of level guides
    in the recipe's folder; its content is put in the recipe, so a build's recipe.yaml holds the guides it used."""
    origin, text = _read(name_or_path)
    data = parse_yaml(text, origin)
    if isinstance(data, dict) and isinstance(data.get("guides"), str):
        folder = Path(name_or_path).parent if Path(name_or_path).is_file() else Path.cwd()
        try:
            path = path_inside(folder, data["guides"], "guides", "the recipe's folder")
        except UnsafeName as error:
            raise RecipeError(f"{origin}: {error}; put the guides file there") from None
        data = data | {"guides": load_guides(path, origin)}
    return parse_recipe(data, origin)


def load_guides(path: Path, recipe_origin: str) -> dict[str, Any]:
    """The level guides in `path`, checked: a RecipeError names the file and each bad field, never its content
    (a file named by mistake may hold anything, a password included)."""
    if not path.is_file():
        raise RecipeError(f"{recipe_origin}: guides: no such file {path}")
    origin, text = _read(path)
    try:
        return CustomGuides.model_validate(parse_yaml(text, origin)).model_dump(mode="json")
    except ValidationError as error:
        raise RecipeError(format_validation_error(error, origin, "guides", show_values=False)) from None


def apply_overrides(recipe: Recipe, overrides: dict[str, Any], origin: str = "command line") -> Recipe:
    """The recipe with the given fields replaced (None values are ignored), validated again as a whole."""
    data = recipe.model_dump(mode="json", exclude_defaults=False)
    changes = {k: v for k, v in overrides.items() if v is not None}
    for key, value in changes.items():
        if key == "sampling":
            data["sampling"] = {**data["sampling"], **value}
        elif key == "teacher_options":
            data["teachers"] = [{**t, **value} for t in data["teachers"]]
        else:
            data[key] = value
    return parse_recipe(data, origin)


def resolve_recipe(recipe: str | Path | None, overrides: dict[str, Any]) -> Recipe:
    """The recipe file or built-in recipe with command-line flags on top; flags alone when no recipe is given."""
    if recipe is not None:
        return apply_overrides(load_recipe(recipe), overrides)
    missing = [flag for flag, key in (("--dataset", "sources"), ("--teacher", "teachers")) if not overrides.get(key)]
    if missing:
        raise RecipeError(f"give --recipe, or at least {' and '.join(missing)}")
    fields = {k: v for k, v in overrides.items() if v is not None and k != "teacher_options"}
    return apply_overrides(parse_recipe(fields, "command line"), {"teacher_options": overrides.get("teacher_options")})
