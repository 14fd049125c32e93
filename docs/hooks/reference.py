"""MkDocs hook: the reference pages made at build time from the code the tools run, so none can fall behind it.

- reference/commands.md: every command of `cotforge` and `build-cot`, each option with its type, default and help,
  read from the click commands typer builds (the same objects `--help` prints);
- reference/recipe.md, train-config.md, sweep-settings.md: every field of `Recipe`, `TrainConfig` and
  `SweepSettings`, nested models and the teacher kinds' union included, read from their JSON schemas.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

import typer
from pydantic import BaseModel

if TYPE_CHECKING:  # the pages are made without MkDocs too (tests/test_cli_help.py)
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files


def _cell(text: Any) -> str:
    """One table cell: on one line, HTML shown as text, pipes escaped."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def _command_rows(command: Any) -> list[str]:
    """The options as `--help` prints them: the help record of each parameter (typer vendors its own click, so the
    records are asked for, not the classes' attributes)."""
    context = command.context_class(command)
    rows = ["| option | what it does |", "|---|---|"]
    for param in command.params:
        record = param.get_help_record(context)
        if record is None:  # hidden, or an argument (named in the usage line)
            continue
        names, help_text = record
        rows.append(f"| {_cell(names)} | {_cell(help_text)} |")
    return rows


def _usage(command: Any, full: str) -> str:
    return _cell(f"{full} {' '.join(command.collect_usage_pieces(command.context_class(command)))}")


def _commands(group: Any, prefix: str) -> list[str]:
    lines: list[str] = []
    context = group.context_class(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        full = f"{prefix} {name}"
        if command.params or not hasattr(command, "list_commands"):  # a group with options runs on its own too
            lines += [f"## `{full}`", "", _usage(command, full), "", _cell(command.help or ""), ""]
            lines += [*_command_rows(command), ""]
        if hasattr(command, "list_commands"):
            lines += _commands(command, full)
    return lines


def commands_page() -> str:
    from cotforge.cli import app, build_cot

    lines = [
        "# Commands",
        "",
        "Generated from the command line itself (`cotforge COMMAND --help` prints the same). Exit codes: 0 all done, "
        "1 an outside service failed, 2 bad usage or input, 3 incomplete (a build, a sweep or a judge run: run it "
        "again), 4 overlap found by "
        "`check --fail-on-overlap`, 130 interrupted.",
        "",
    ]
    lines += _commands(typer.main.get_command(app), "cotforge")
    lines += ["## `build-cot`", "", "The build command alone, with the options of `cotforge build`.", ""]
    lines += _command_rows(typer.main.get_command(build_cot))
    return "\n".join(lines) + "\n"


def _anchor(name: str) -> str:
    return name.lower()


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(option) for option in schema[key])
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_type(schema['additionalProperties'])}"
    return str(kind)


def _model_section(name: str, schema: dict[str, Any], level: str) -> list[str]:
    lines = [f"{level} {name}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    properties = schema.get("properties", {})
    if not properties:
        return [*lines, f"One of: {_type(schema)}.", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | default | what it is |", "|---|---|---|---|"]
    for field, spec in properties.items():
        default = "required" if field in required else f"`{json.dumps(spec.get('default'))}`"
        lines.append(f"| `{field}` | {_type(spec)} | {_cell(default)} | {_cell(spec.get('description', ''))} |")
    return [*lines, ""]


def model_page(title: str, model: type[BaseModel], intro: str) -> str:
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    lines = [f"# {title}", "", intro, ""]
    lines += _model_section(model.__name__, schema, "##")
    for name in sorted(definitions):
        lines += _model_section(name, definitions[name], "##")
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    from cotforge.schemas import Recipe
    from cotforge.sweeps import SweepSettings
    from cotforge.train.config import TrainConfig

    return {
        "reference/commands.md": commands_page(),
        "reference/recipe.md": model_page(
            "Recipe fields",
            Recipe,
            "Every field a YAML recipe may hold (`build-cot --recipe FILE`), generated from the `Recipe` model that "
            "validates it; unknown fields are refused. A teacher is one of the teacher kinds below, chosen by its "
            "`backend`.",
        ),
        "reference/train-config.md": model_page(
            "Training settings",
            TrainConfig,
            "`TrainConfig`, in groups: `cotforge train`'s options, one per setting by its own name (`--lr` for "
            "`optimisation.learning_rate`; Python and YAML take `learning_rate=` as well), and "
            "`cotforge.train_student`'s argument, generated from the model.",
        ),
        "reference/sweep-settings.md": model_page(
            "Sweep settings",
            SweepSettings,
            "`SweepSettings`: what decides a sweep's numbers, saved in its `sweep.json`; `cotforge.sweep`'s argument.",
        ),
    }


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from mkdocs.structure.files import File

    for path, content in pages().items():
        files.append(File.generated(config, path, content=content))
    return files
