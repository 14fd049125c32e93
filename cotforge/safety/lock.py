"""One writer per directory: an OS file lock (flock) held for a whole run, released by the OS when the process
ends however it ends, so a killed run never leaves a stale lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".cotforge.lock"


class DirectoryInUse(RuntimeError):
    """Another process holds the directory; the message names it."""


@contextlib.contextmanager
def directory_lock(folder: Path, command: str, create: bool = True) -> Iterator[None]:
    """Hold `folder`'s lock for the block, or raise DirectoryInUse at once naming the process that holds it. A
    folder that does not exist is made (`create`) or left alone: there is nothing in it to protect."""
    if not folder.is_dir():
        if not create or folder.exists():
            yield
            return
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise DirectoryInUse(
                f"{folder} is in use by {holder}; wait for it to end (or stop it), or give another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({command})\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
