"""The base of the on-disk contracts: a folder with a fixed layout."""

from __future__ import annotations

from pathlib import Path


class Folder:
    """A directory whose layout a subclass names; the path need not exist yet."""

    __slots__ = ("path",)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.path == self.path  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.path))

    def file(self, name: str) -> Path:
        return self.path / name
