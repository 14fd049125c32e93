"""What every command shares: the consoles, how a command fails (a sentence and an exit code), list options."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from cotforge.exitcodes import INTERRUPTED, SERVICE_FAILED, USAGE_ERROR

# Long paths and ids stay on one line in logs; no emoji codes, so a file's or a user's `:x:` is printed as written
# (rich's markup in such text is escaped where it is printed).
out = Console(soft_wrap=True, emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)


class _Interrupt:
    explained = False  # cotforge.entry says "interrupted" itself unless a command already explained


interrupt = _Interrupt()


def fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    interrupt.explained = code == INTERRUPTED
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def service_code(usage: bool) -> int:
    """The exit code of an outside service's error: bad input we sent (2), or the service itself (1)."""
    return USAGE_ERROR if usage else SERVICE_FAILED


def fail_validation(error: ValidationError, command: str, flags: Mapping[str, str] | None = None) -> typer.Exit:
    """The error as a usage error; each setting named in `flags` by its flag."""
    from cotforge.recipes.loader import format_validation_error

    return fail(format_validation_error(error, command, "option", flags=flags))


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def log(line: str) -> None:
    err.print(line, highlight=False, markup=False)  # progress lines carry names and errors from outside


def split_commas(values: list[str] | None) -> list[str]:
    """Repeatable options that also take comma-separated values, flattened."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


CHECK_AGAINST_HELP = (
    "Evaluation sets to compare training questions with: built-in data set names (their --check-split) or files"
    " (.jsonl/.json/.parquet/.csv with a question column); repeatable or comma-separated. Default: the built-in data"
    " sets the corpus comes from"
)


def warn_cut_texts(build_dir: Path) -> None:
    """A warning per subset with texts longer than its quality signals read (cotforge_stats.json counts them)."""
    from cotforge.corpus import BuildDir
    from cotforge.quality.signals import SubsetSignals

    for name, stats in (BuildDir(build_dir).read_stats() or {}).items():
        signals = stats.get("signals") if isinstance(stats, dict) else None
        note = SubsetSignals.model_validate(signals).cut_note() if signals else None
        if note:
            warn(f"{name}: {note}")
