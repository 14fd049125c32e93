"""What a pass over a source found, kept in the build directory, so that resuming a build whose sources have not
changed reads their rows only when it asks for something.

Each entry is one `.npz` file named by a stamp: a digest of everything its content depends on (the source file's
path, size, modification time and content digest, or a Hub split's fingerprint, with the source's settings). A
stamp that differs finds nothing and the pass runs again. Each entry also holds a check, a digest of its kind, its
stamp and its arrays: an entry that cannot be read, fails its check or is not of the shape its reader expects is
treated as missing: a damaged entry, or one edited by other means than this module, costs a resume its speed, not
its answers (the check is no secret: one forged with this module's own code is caught only where its counts give it
away, cotforge.builders.plan.planned_keys). Entries hold row numbers, counts and key digests, never a question or an
answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cotforge.safety.atomic import atomic_write_bytes

# Raise it when the entries change shape: an entry of another layout then has another stamp and is never read.
LAYOUT = 2
_SUFFIX = ".npz"
_CHECK = "check"  # the array holding an entry's check; no reader's array has this name
# The kinds of entry: a source's checking pass, a plan's key digests, a plan's estimated token counts.
SOURCE, PLAN, ESTIMATE = "source", "plan", "estimate"


def stamp(*parts: object) -> str:
    """32 hex digits standing for `parts` (their reprs, in order) and the layout."""
    return hashlib.sha256(repr((LAYOUT, *parts)).encode()).hexdigest()[:32]


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks: on CPUs with SHA instructions the fastest digest the standard
    library has (a 57 MB source of 1M problems: 0.04 s of CPU, BENCHMARKS.md)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _check(kind: str, key: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """What an entry's arrays, its kind and its stamp digest to: an entry copied under another stamp, or with any
    array edited, does not verify."""
    digest = hashlib.sha256(repr((LAYOUT, kind, key)).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(repr((name, array.dtype.str, array.shape)).encode())
        digest.update(array.data)
    return np.frombuffer(digest.digest()[:16], np.uint8)


@dataclass(frozen=True)
class Selection:
    """What the checking pass of a source decided: rows to skip on every later read, where to stop, and what to
    tell."""

    skip: np.ndarray  # sorted row indices: invalid, merged or in conflict
    end: int | None  # the first row not read (the limit was reached), or None: to the end
    count: int
    invalid: list[tuple[int, str]]
    merged: int

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "skip": self.skip,
            "figures": np.array([-1 if self.end is None else self.end, self.count, self.merged], np.int64),
            "invalid_rows": np.array([row for row, _ in self.invalid], np.int64),
            "invalid_why": np.array([why for _, why in self.invalid], str),
        }

    @classmethod
    def of_arrays(cls, arrays: dict[str, np.ndarray]) -> Selection:
        """The selection `arrays` hold; ValueError where they are not what a checking pass writes (each row left
        out is either told, invalid, or merged, once)."""
        skip, figures, rows, why = (arrays[name] for name in ("skip", "figures", "invalid_rows", "invalid_why"))
        if not all(a.ndim == 1 and a.dtype.kind == "i" for a in (skip, figures, rows)) or why.dtype.kind != "U":
            raise ValueError("not a selection")
        end, count, merged = (int(n) for n in figures) if len(figures) == 3 else (-2, -1, -1)
        told = len(rows) == len(why) and bool(np.isin(rows, skip).all())
        ordered = len(skip) == 0 or (skip[0] >= 0 and bool((skip[1:] > skip[:-1]).all()))
        if min(end + 1, count, merged) < 0 or not (told and ordered) or len(skip) != len(rows) + merged:
            raise ValueError("not a selection")
        if not count and not len(rows):
            raise ValueError("a source of no rows is never kept")  # load_problems refuses it
        invalid = list(zip(rows.tolist(), why.tolist(), strict=True))
        return cls(skip, None if end < 0 else end, count, invalid, merged)


class SourceCache:
    """A folder of entries (which need not exist yet), each a few arrays under one stamp."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / f"{kind}-{key}{_SUFFIX}"

    def read(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        """The arrays kept under (kind, key), or None: missing, half-written by a killed run, damaged or edited (the
        pass then runs again)."""
        path = self._path(kind, key)
        try:
            with np.load(path, allow_pickle=False) as entry:
                arrays = {name: entry[name] for name in entry.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        check = arrays.pop(_CHECK, None)
        return arrays if check is not None and np.array_equal(check, _check(kind, key, arrays)) else None

    def write(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Keep `arrays` under (kind, key), replacing what was there. Nothing is kept where `cache` is not a folder
        (a file of that name is the user's: the resume is slower, not wrong)."""
        if self.folder.exists() and not self.folder.is_dir():
            return
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, **{_CHECK: _check(kind, key, arrays)})
        atomic_write_bytes(self._path(kind, key), buffer.getvalue())

    def selection(self, key: str) -> Selection | None:
        found = self.read(SOURCE, key)
        try:
            return None if found is None else Selection.of_arrays(found)
        except (KeyError, ValueError):
            return None

    def keep_only(self, kept: set[tuple[str, str]]) -> None:
        """Remove every entry but the (kind, key) pairs in `kept`: the cache holds the current sources' alone."""
        wanted = {self._path(kind, key).name for kind, key in kept}
        for path in self.folder.glob(f"*{_SUFFIX}") if self.folder.is_dir() else ():
            if path.name not in wanted:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
