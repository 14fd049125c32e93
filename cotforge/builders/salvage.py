"""Salvage a damaged store: every readable answer, and every record of the Parquet outputs, into a fresh store.

The damaged file is kept beside it (renamed, with its WAL), so nothing is lost even if salvage misses something.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cotforge.builders.store import Store, payload_row
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.schemas.record import AnswerOrigin

_CHUNK = 500


@dataclass
class SalvageReport:
    kept_aside: Path | None  # the damaged store, renamed
    from_store: int = 0
    from_outputs: int = 0
    unreadable: dict[str, int] = field(default_factory=dict)  # why -> rows

    def lost(self, why: str) -> None:
        self.unreadable[why] = self.unreadable.get(why, 0) + 1


def _rows(db: sqlite3.Connection, report: SalvageReport) -> Iterator[tuple[str, str, str | None]]:
    """(kind, payload, chat) of every row SQLite can still read: in chunks, then row by row where a chunk fails.
    The chat is joined from the prompts table (a store of the first layout keeps it in the payload)."""
    try:
        (last,) = db.execute("SELECT max(rowid) FROM answers").fetchone()
        columns = {row[1] for row in db.execute("PRAGMA table_info(answers)")}
    except sqlite3.DatabaseError:
        report.lost("the answers table cannot be read at all")
        return
    select = (
        "SELECT a.kind, a.payload, p.messages FROM answers a LEFT JOIN prompts p ON p.id = a.prompt_id"
        if "prompt_id" in columns
        else "SELECT a.kind, a.payload, NULL FROM answers a"
    )
    start = 0
    while last is not None and start < last:
        try:
            yield from db.execute(
                f"{select} WHERE a.rowid > ? AND a.rowid <= ? ORDER BY a.rowid", (start, start + _CHUNK)
            )
        except sqlite3.DatabaseError:
            for rowid in range(start + 1, start + _CHUNK + 1):
                try:
                    yield from db.execute(f"{select} WHERE a.rowid = ?", (rowid,)).fetchall()
                except sqlite3.DatabaseError:
                    report.lost("damaged page")
        start += _CHUNK


def _move_aside(path: Path) -> Path | None:
    if not path.exists():
        return None
    aside = path.with_name(f"{path.stem}.damaged-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
    for suffix in ("", "-wal", "-shm"):  # SQLite finds the WAL by name: it moves with the file
        companion = Path(f"{path}{suffix}")
        if companion.exists():
            companion.rename(Path(f"{aside}{suffix}"))
    return aside


def salvage(build_dir: Path) -> SalvageReport:
    """Rebuild `build_dir`'s store from what can be read; returns what was recovered and what was not."""
    path = BuildDir(build_dir).store_path
    aside = _move_aside(path)
    report = SalvageReport(kept_aside=aside)
    with Store(path) as fresh:
        if aside is not None and aside.stat().st_size > 0:
            try:
                old = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
            except sqlite3.DatabaseError:
                report.lost("not an SQLite file")
            else:
                for kind, payload, messages in _rows(old, report):
                    try:
                        fresh.put(payload_row(kind, payload, messages))
                        report.from_store += 1
                    except (ValueError, TypeError):
                        report.lost("damaged answer")
                old.close()
        known = fresh.settled_keys()
        for row in _outputs(build_dir, report):  # the store's own rows win: they may be newer
            if row.key not in known:
                fresh.put(row)
                report.from_outputs += 1
    return report


def _outputs(build_dir: Path, report: SalvageReport) -> Iterator[AnswerOrigin]:
    """Rows of every readable Parquet output; a damaged file is counted and skipped."""
    directory = BuildDir(build_dir)
    try:
        names = list(directory.subset_files())
    except BuildDirError:
        names = []
    for name in names:
        try:
            yield from directory.read_subsets([name])[name]
        except BuildDirError:
            report.lost(f"{directory.subset_path(name).relative_to(build_dir)} unreadable")
    try:
        yield from directory.read_rejections()
    except BuildDirError:
        report.lost(f"{directory.rejections_path.name} unreadable")
