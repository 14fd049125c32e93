"""Console entry points, kept light: the signal handling is in place before the CLI and its libraries load, so
Ctrl-C or SIGTERM at any moment ends with a sentence and exit code 130, never a traceback or silence."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from cotforge.exitcodes import INTERRUPTED


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a command the way Ctrl-C does


def _run(name: str) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    explained = False
    try:
        from typer import TyperException  # typer >= 0.28: the public base of its usage errors

        from cotforge import cli
        from cotforge.cli.common import interrupt

        try:
            code = getattr(cli, name)(standalone_mode=False)  # Ctrl-C inside a command comes back as 130
        except TyperException as error:  # usage errors, formatted as typer formats them
            from typer import rich_utils

            rich_utils.rich_format_error(error)
            code = error.exit_code
        explained = interrupt.explained
    except KeyboardInterrupt:
        code = INTERRUPTED
    if code == INTERRUPTED and not explained:
        sys.stderr.write("\ninterrupted; nothing more was done (work already stored is kept)\n")
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    """`cotforge`."""
    _run("app")


def build_cot_main() -> None:
    """`build-cot`."""
    _run("build_cot")
