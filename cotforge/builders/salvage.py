"""Salvage a damaged store: every readable answer, and every record of the Parquet outputs, into a fresh store.

The damaged file is kept beside it (renamed, with its WAL), so nothing is lost even if salvage misses something.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cotforge.builders.store import Store, fold_wal, payload_row
from cotforge.builders.store_queries import readable_answers
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.safety.atomic import PARTIAL, fsync_path
from cotforge.safety.diskfull import writing
from cotforge.safety.lock import directory_lock
from cotforge.schemas.record import AnswerOrigin


@dataclass
class SalvageReport:
    kept_aside: Path | None  # the damaged store, renamed
    from_store: int = 0
    from_outputs: int = 0
    unreadable: dict[str, int] = field(default_factory=dict)  # why -> rows

    def lost(self, why: str) -> None:
        self.unreadable[why] = self.unreadable.get(why, 0) + 1


def _copy_aside(path: Path) -> Path | None:
    """The damaged store under a new name (a hard link: no copy of a large file), with copies of its WAL; the
    store itself stays in place, untouched, until the fresh one replaces it."""
    if not path.exists():
        return None
    aside = path.with_name(f"{path.stem}.damaged-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
    os.link(path, aside)
    for suffix in ("-wal", "-shm"):  # SQLite finds the WAL by name: a copy goes with the file
        companion = Path(f"{path}{suffix}")
        if companion.exists():
            shutil.copy2(companion, Path(f"{aside}{suffix}"))
    return aside


def salvage(build_dir: Path) -> SalvageReport:
    """Rebuild `build_dir`'s store from what can be read; returns what was recovered and what was not. The fresh
    store is written under a temporary name and renamed into place when complete: a stopped salvage leaves the old
    store, never a partial one that a build would trust."""
    with directory_lock(build_dir, "salvage", create=False):
        path = BuildDir(build_dir).store_path
        for stale in build_dir.glob(f"{path.name}{PARTIAL}*"):
            stale.unlink()
        aside = _copy_aside(path)
        report = SalvageReport(kept_aside=aside)
        fresh_path = path.with_name(f"{path.name}{PARTIAL}{os.getpid()}")
        try:
            with writing(fresh_path):
                _fill(fresh_path, aside, build_dir, report)
                fold_wal(fresh_path)  # one file to rename
                fsync_path(fresh_path)
            for suffix in ("-wal", "-shm"):  # the old store's WAL must not be read against the fresh store
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            os.replace(fresh_path, path)
            fsync_path(build_dir)
        finally:
            for partial in build_dir.glob(f"{path.name}{PARTIAL}*"):
                partial.unlink()
    return report


def _fill(fresh_path: Path, aside: Path | None, build_dir: Path, report: SalvageReport) -> None:
    with Store(fresh_path) as fresh:
        if aside is not None and aside.stat().st_size > 0:
            for kind, payload, messages in readable_answers(aside, report.lost):
                try:
                    fresh.put(payload_row(kind, payload, messages))
                    report.from_store += 1
                except (ValueError, TypeError):
                    report.lost("damaged answer")
        known = fresh.settled_keys()
        for row in _outputs(build_dir, report):  # the store's own rows win: they may be newer
            if row.key not in known:
                fresh.put(row)
                report.from_outputs += 1


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
