"""Names that become paths: a subset, a teacher label, a data set, a recipe or source name, anything read from a
pulled repo or a record. Each goes through `safe_name`, which returns it unchanged or refuses it."""

from __future__ import annotations

import re
from pathlib import Path

MAX_NAME_LENGTH = 100  # a subset joins two names (data set, teacher) and a suffix: still under 255 bytes
MAX_FILE_NAME_LENGTH = 240  # a whole file name, before its extension
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class UnsafeName(ValueError):
    """A name that would not stay one file name inside its folder; the message names the field."""


def safe_name(value: object, field: str = "", max_length: int = MAX_NAME_LENGTH) -> str:
    """`value` when it is a plain file name (letters, digits, '.', '_', '+', '-'; starting with a letter or digit;
    at most `max_length` characters), else UnsafeName naming `field` (pydantic validators, whose errors name
    the field already, leave it out). Refusing rather than rewriting keeps two names from becoming one file."""
    prefix = f"{field}: " if field else ""
    if not isinstance(value, str) or not value:
        raise UnsafeName(f"{prefix}must be a non-empty name")
    shown = ascii(value[:60]) + ("..." if len(value) > 60 else "")
    if len(value) > max_length:
        raise UnsafeName(f"{prefix}{shown} is longer than {max_length} characters")
    if not _SAFE.match(value):  # a first letter or digit: never ".", "..", or a hidden file
        raise UnsafeName(
            f"{prefix}{shown} cannot be a file name; use letters, digits, '.', '_', '+' or '-', starting with a "
            "letter or digit (no '/', '\\', spaces or control characters)"
        )
    return value


def path_inside(folder: Path, relative: str, field: str, folder_is: str = "the folder") -> Path:
    """`folder / relative` when it stays inside `folder` once resolved (links followed), else UnsafeName naming
    `field` and saying what the folder is: a `..`, an absolute path or a link that leads out is refused, so a file
    cannot send its reader elsewhere."""
    base = folder.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise UnsafeName(f"{field}: {relative[:200]!a} is not in {folder_is} ({base})")
    return path
