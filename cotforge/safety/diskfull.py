"""A full disk is the user's to fix, not a crash: one message, exit code 2, and the file being written named."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path


class DiskFull(OSError):
    def __init__(self, path: Path | None) -> None:
        where = "a file" if path is None else str(path)
        super().__init__(
            errno.ENOSPC,
            f"no space left on {device_of(path)} while writing {where}; free space and run the same command: "
            "nothing stored is lost",
        )

    def __str__(self) -> str:
        return str(self.strerror)


def device_of(path: Path | None) -> str:
    """The mount point holding `path` (the device a user frees space on)."""
    if path is None:
        return "the disk"
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return str(current)


def is_disk_full(error: BaseException) -> bool:
    """ENOSPC however a library reports it: an OSError, SQLite's 'disk is full', or a message (torch, polars)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(error, sqlite3.OperationalError) and "disk is full" in str(error):
        return True
    text = str(error)
    return "No space left on device" in text or "os error 28" in text


def as_disk_full(error: BaseException) -> DiskFull | None:
    """`error` as DiskFull (naming the file where the error knows it), or None when it is something else."""
    if isinstance(error, DiskFull):
        return error
    if not is_disk_full(error):
        return None
    filename = getattr(error, "filename", None)
    return DiskFull(Path(filename) if isinstance(filename, str) else None)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turns a full disk while the block writes `path` into DiskFull naming it."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as error:
        if is_disk_full(error):
            raise DiskFull(path) from None
        raise
