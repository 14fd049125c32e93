"""Every option of every command explains itself: a help text and a default (shown, or stated in the help)."""

from __future__ import annotations

import re

import typer.main
from typer.testing import CliRunner

from cotforge.cli import app

COMMANDS = typer.main.get_command(app).commands


def test_every_option_has_help_and_a_default() -> None:
    missing = []
    for name, command in COMMANDS.items():
        assert command.help, f"{name} has no description"
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            default_known = param.required or param.default is not None or "default" in (param.help or "").lower()
            if not param.help or not default_known:
                missing.append(f"{name} {'/'.join(param.opts)}")
    assert missing == []


def test_help_renders_for_every_command() -> None:
    for name in COMMANDS:
        result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, name
        assert "Usage" in result.output


def test_prompt_mode_offers_only_what_a_build_accepts() -> None:
    result = CliRunner().invoke(app, ["build", "--help"], env={"COLUMNS": "200"})
    assert "gold_hinted" in result.output and "unknown" not in result.output
    refused = CliRunner().invoke(app, ["build", "-d", "svamp", "-t", "gpt-4o", "--prompt-mode", "unknown"])
    assert refused.exit_code == 2


def test_split_with_sample_is_refused_not_ignored() -> None:
    build = CliRunner().invoke(app, ["build", "-d", "svamp", "-t", "gpt-4o", "--sample", "--split", "test"])
    assert build.exit_code == 2 and "--sample" in build.output
    evaluation = CliRunner().invoke(app, ["eval", "--model", "x", "--benchmark", "svamp", "--sample", "--split", "dev"])
    assert evaluation.exit_code == 2 and "--sample" in evaluation.output


def test_the_reference_site_lists_every_option_of_every_command() -> None:
    """docs/hooks/reference.py makes the site's command reference from the commands: none is left out, including
    a group's own options (`cotforge sweep`) and its subcommands."""
    import importlib.util
    from pathlib import Path

    hook = Path(__file__).parent.parent / "docs" / "hooks" / "reference.py"
    spec = importlib.util.spec_from_file_location("reference_hook", hook)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.commands_page()

    def walk(command, full: str):
        yield full, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{full} {name}")

    for full, command in walk(typer.main.get_command(app), "cotforge"):
        if full == "cotforge":
            continue
        section = page.split(f"## `{full}`\n", 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                flag = max(param.opts, key=len)
                assert re.search(rf"(\| |, ){re.escape(flag)}[ ,|/]", section), f"{full} {flag}"


def readme_command_lines(text: str) -> list[list[str]]:
    """The cotforge and build-cot command lines of the README's bash blocks (continuations joined, comments cut)."""
    import shlex

    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" #")[0]) if line.strip() else []
            if words[:1] == ["build-cot"] or (words[:1] in (["cotforge"], ["torchrun"]) and "cotforge" in words):
                lines.append(words[words.index("build-cot" if words[0] == "build-cot" else "cotforge") :])
    return lines


def test_every_command_the_readme_shows_names_options_that_exist() -> None:
    """A renamed command or option cannot leave the README's usage behind: each shown line resolves to a command,
    and each of its flags is one of that command's."""
    from pathlib import Path

    def unknown(text: str) -> list[str]:
        found = []
        for words in readme_command_lines(text):
            command = typer.main.get_command(app)
            rest = ["build", *words[1:]] if words[0] == "build-cot" else words[1:]  # build-cot: the build command
            while rest and getattr(command, "commands", {}).get(rest[0]) is not None:
                command = command.commands[rest.pop(0)]
            known = {"--help"} | {o for p in command.params for o in [*p.opts, *getattr(p, "secondary_opts", [])]}
            found += [f"{' '.join(words[:3])}: {w}" for w in rest if w.startswith("-") and w.split("=")[0] not in known]
        return found

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert len(readme_command_lines(readme)) > 20
    assert unknown(readme) == []
    assert unknown("```bash\ncotforge sweep report DIR --no-such-flag\n```\n") == [
        "cotforge sweep report: --no-such-flag"
    ]
