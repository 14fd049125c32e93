"""Console entry points, kept light: the signal handling is in place before the CLI and its libraries load, so
Ctrl-C or SIGTERM at any moment ends with a sentence and exit code 130, never a traceback or silence."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from cotforge.exitcodes import INTERRUPTED, USAGE_ERROR


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
    except Exception as error:  # what the user fixes, from any command: a sentence and exit 2, not a traceback
        message = _user_error(error)
        if message is None:
            raise
        sys.stderr.write(f"error: {message}\n")
        code = USAGE_ERROR
    if code == INTERRUPTED and not explained:
        sys.stderr.write("\ninterrupted; nothing more was done (work already stored is kept)\n")
    sys.exit(code if isinstance(code, int) else 0)


def _user_error(error: Exception) -> str | None:
    """The sentence for an error the user fixes that any command can meet: a full disk, a directory another
    process is writing."""
    from cotforge.safety.diskfull import as_disk_full
    from cotforge.safety.lock import DirectoryInUse

    if isinstance(error, DirectoryInUse):
        return str(error)
    full = as_disk_full(error)
    return None if full is None else str(full)


def main() -> None:
    """`cotforge`."""
    _run("app")


def build_cot_main() -> None:
    """`build-cot`."""
    _run("build_cot")
