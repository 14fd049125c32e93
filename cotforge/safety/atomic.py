"""Writes that a kill or a full disk cannot leave half done: a temporary name beside the target, fsync, rename.
A reader sees the old file (or folder) or the new one, never a torn one."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from cotforge.safety.diskfull import writing

PARTIAL = ".partial-"  # temporary names hold this; readers skip them and the next writer removes them


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_path(Path(root) / name)
        fsync_path(Path(root))


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to; on success it is synced and renamed over `path`, on any
    error (or a kill) the old `path` stays as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}{PARTIAL}{os.getpid()}")
    try:
        with writing(path):
            yield temporary
            fsync_path(temporary)
        os.replace(temporary, path)
        fsync_path(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def is_empty_folder(folder: Path, ignore: tuple[str, ...] = ()) -> bool:
    return not folder.exists() or all(entry.name in ignore for entry in folder.iterdir())


@contextlib.contextmanager
def atomic_folder(folder: Path, keep: tuple[str, ...] = ()) -> Iterator[Path]:
    """A temporary folder beside `folder` to write its whole new content in; when the block ends without error it
    replaces `folder` (the entries named in `keep`, such as a held lock file, move over first). A kill leaves
    `folder` as it was, and the temporary one is removed by the next call."""
    folder = folder.absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".{folder.name}{PARTIAL}{os.getpid()}")
    for stale in folder.parent.glob(f".{folder.name}{PARTIAL}*"):
        shutil.rmtree(stale, ignore_errors=True)
    temporary.mkdir()
    try:
        yield temporary
        _sync_tree(temporary)
        replaced = folder.with_name(f".{folder.name}.replaced-{os.getpid()}")
        if folder.exists():
            for name in keep:
                if (folder / name).exists():
                    os.replace(folder / name, temporary / name)
            os.replace(folder, replaced)
        os.replace(temporary, folder)
        fsync_path(folder.parent)
        shutil.rmtree(replaced, ignore_errors=True)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
