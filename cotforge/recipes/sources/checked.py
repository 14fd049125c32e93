"""What a pass over a source found, kept in the build directory, so that resuming a build whose sources have not
changed reads their rows only when it asks for something.

Each entry is one `.npz` file named by a stamp: a digest of everything its content depends on (the source file's
path, size and modification time, or a Hub split's fingerprint, with the source's settings). A stamp that differs
finds nothing and the pass runs again; an entry that cannot be read is treated as missing. Entries hold row
numbers, counts and key digests, never a question or an answer.
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
LAYOUT = 1
_SUFFIX = ".npz"
# The kinds of entry: a source's checking pass, a plan's key digests, a plan's estimated token counts.
SOURCE, PLAN, ESTIMATE = "source", "plan", "estimate"


def stamp(*parts: object) -> str:
    """32 hex digits standing for `parts` (their reprs, in order) and the layout."""
    return hashlib.sha256(repr((LAYOUT, *parts)).encode()).hexdigest()[:32]


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
        end, count, merged = (int(n) for n in arrays["figures"])
        invalid = list(zip(arrays["invalid_rows"].tolist(), arrays["invalid_why"].tolist(), strict=True))
        return cls(arrays["skip"], None if end < 0 else end, count, invalid, merged)


class SourceCache:
    """A folder of entries (which need not exist yet), each a few arrays under one stamp."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / f"{kind}-{key}{_SUFFIX}"

    def read(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        path = self._path(kind, key)
        try:
            with np.load(path, allow_pickle=False) as entry:
                return {name: entry[name] for name in entry.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # missing, half-written by a killed run or damaged: the pass runs again

    def write(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Keep `arrays` under (kind, key); an entry already kept is left as it is (a key stands for its content)."""
        if self._path(kind, key).exists():
            return
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self.folder.mkdir(exist_ok=True)
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
