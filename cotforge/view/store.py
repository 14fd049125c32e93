"""The store of a build, read with SQL: read-only, each call a fresh short transaction, so a build writing beside
it is never blocked and a refresh shows its new answers."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cotforge.builders.store import FAILED, RECORD, REJECTION
from cotforge.corpus import BuildDir
from cotforge.schemas.record import with_dataset
from cotforge.view.parquet import ParquetReader
from cotforge.view.reader import (
    PAGE_SIZE,
    SEARCHED,
    Figures,
    Filters,
    Page,
    Reader,
    SubsetInfo,
    Totals,
    ViewError,
    total_of,
)

_FIGURES = (
    "count(*), total(json_extract(payload, '$.correct')), total(length(json_extract(payload, '$.rationale'))), "
    "total(json_array_length(payload, '$.steps')), total(json_extract(payload, '$.usage.prompt_tokens')), "
    "total(json_extract(payload, '$.usage.completion_tokens')), count(json_extract(payload, '$.cost_usd')), "
    "total(json_extract(payload, '$.cost_usd'))"
)


def _figures(values: tuple[Any, ...]) -> Figures:
    count, correct, chars, steps, prompt, completion, priced, cost = values
    return Figures(count, int(correct), int(chars), int(steps), int(prompt), int(completion), priced, cost)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class StoreReader(Reader):
    """SQL on the store's tables, read-only. Totals are kept between requests and brought up to date from the rows
    added since (records and rejections are never rewritten; a failed answer may be, by its retry, so failed rows
    are looked at again each time)."""

    source = "store (live while a build writes)"

    def __init__(self, build: BuildDir) -> None:
        super().__init__(build)
        self._lock = threading.Lock()
        self._seen = 0  # the highest rowid summed into _totals
        self._failed: set[int] = set()  # rowids that were failed when last seen
        self._totals = Totals()
        self._by_stored: dict[tuple[str, str], str] = {}
        self._catalogue: list[SubsetInfo] = []
        self._catalogue_at: tuple[int] | None = None
        self._parquet: tuple[int, ParquetReader] | None = None  # the outputs' reader, and the writes they hold

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One short read-only transaction: a consistent view that never blocks the build's writer."""
        uri = f"file:{quote(str(self.build.store_path.resolve()))}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as error:
            raise ViewError(f"{self.build.store_path}: cannot be read ({error})") from None
        try:
            db.execute("BEGIN")
            yield db
        except sqlite3.DatabaseError as error:
            raise ViewError(f"{self.build.store_path}: not a readable cotforge store ({error})") from None
        finally:
            db.close()

    def catalogue(self) -> list[SubsetInfo]:
        """The subsets and their counts; kept while the store's count of writes (meta 'changes') stays the same."""
        with self._read() as db:
            try:
                changes = db.execute("SELECT value FROM meta WHERE name = 'changes'").fetchone()
            except sqlite3.OperationalError:  # a store from before the count of writes
                changes = None
            if changes is not None and changes == self._catalogue_at:
                return self._catalogue
            counts = db.execute("SELECT kind, dataset, subset, count(*) FROM answers GROUP BY kind, dataset, subset")
            found: dict[tuple[str, str], list[int]] = {}
            for kind, dataset, subset, count in counts.fetchall():
                found.setdefault((dataset, subset), [0, 0])[kind != RECORD] += count
            several = len({dataset for dataset, _ in found}) > 1
            subsets = []
            for (dataset, stored), (records, rejections) in found.items():
                teacher, level, fmt = (
                    db.execute(
                        "SELECT json_extract(payload, '$.teacher'), json_extract(payload, '$.granularity'), "
                        "json_extract(payload, '$.format') FROM answers WHERE kind = ? AND dataset = ? AND subset = ? "
                        "LIMIT 1",
                        (RECORD if records else REJECTION if rejections else FAILED, dataset, stored),
                    ).fetchone()
                    or db.execute(
                        "SELECT json_extract(payload, '$.teacher'), json_extract(payload, '$.granularity'), "
                        "json_extract(payload, '$.format') FROM answers WHERE dataset = ? AND subset = ? LIMIT 1",
                        (dataset, stored),
                    ).fetchone()
                )
                name = with_dataset(stored, dataset if several else None)
                subsets.append(SubsetInfo(name, dataset, stored, teacher, level, fmt, records, rejections))
        self._by_stored = {(s.dataset, s.stored): s.name for s in subsets}
        self._catalogue, self._catalogue_at = sorted(subsets, key=lambda s: s.name), changes
        return self._catalogue

    def _exported(self, db: sqlite3.Connection) -> ParquetReader | None:
        """The Parquet outputs, when they hold exactly what the store holds (the build wrote them and nothing was
        stored since): they answer column queries much faster than the stored JSON."""
        try:
            changes, exported = db.execute(
                "SELECT (SELECT value FROM meta WHERE name = 'changes'), "
                "(SELECT value FROM meta WHERE name = 'exported')"
            ).fetchone()
        except sqlite3.OperationalError:  # a store from before the export mark
            return None
        if changes != exported or not self.build.is_build():
            return None
        if self._parquet is None or self._parquet[0] != changes:
            self._parquet = changes, ParquetReader(self.build)
        return self._parquet[1]

    def totals(self) -> Totals:
        with self._lock:
            catalogue = self.catalogue()
            with self._read() as db:
                top = db.execute("SELECT max(rowid) FROM answers").fetchone()[0] or 0
                exported = self._exported(db) if not self._seen else None
                if exported is not None:  # start from the outputs' sums; later rows are added as they come
                    self._totals = exported.totals()
                    self._failed = {r for (r,) in db.execute("SELECT rowid FROM answers WHERE kind = 'failed'")}
                    self._seen = top
                self._sum(db, "rowid > ? AND rowid <= ? AND kind != 'failed'", (self._seen, top))
                self._failed |= {
                    rowid
                    for (rowid,) in db.execute(
                        "SELECT rowid FROM answers WHERE rowid > ? AND rowid <= ? AND kind = 'failed'",
                        (self._seen, top),
                    )
                }
                if self._failed:  # retried since: now a record or a rejection
                    marks = ",".join("?" * len(self._failed))
                    settled = {
                        rowid
                        for (rowid,) in db.execute(
                            f"SELECT rowid FROM answers WHERE rowid IN ({marks}) AND kind != 'failed'",
                            tuple(self._failed),
                        )
                    }
                    if settled:
                        self._sum(db, f"rowid IN ({','.join('?' * len(settled))})", tuple(settled))
                        self._failed -= settled
                self._seen = top
                failed = db.execute(
                    "SELECT json_extract(payload, '$.detail'), count(*) FROM answers WHERE kind = 'failed' GROUP BY 1"
                ).fetchall()
            totals = self._totals
            return Totals(
                subsets={s.name: totals.subsets.get(s.name, Figures()) for s in catalogue if s.records},
                rejected=dict(sorted(totals.rejected.items())),
                failed={detail or "": count for detail, count in failed},
                rejected_figures=totals.rejected_figures,
            )

    def _sum(self, db: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> None:
        rows = db.execute(
            f"SELECT kind, dataset, subset, CASE kind WHEN 'record' THEN NULL ELSE json_extract(payload, '$.reason') "
            f"END, {_FIGURES} FROM answers WHERE {where} GROUP BY 1, 2, 3, 4",
            args,
        )
        for kind, dataset, stored, reason, *values in rows.fetchall():
            figures = _figures(tuple(values))
            if kind == RECORD:
                name = self._by_stored.get((dataset, stored), stored)
                self._totals.subsets.setdefault(name, Figures()).add(figures)
            else:
                self._totals.rejected[reason] = self._totals.rejected.get(reason, 0) + figures.records
                self._totals.rejected_figures.add(replace(figures, correct=0))

    def _where(self, filters: Filters, chosen: list[SubsetInfo]) -> tuple[str, list[Any]]:
        where = ["kind = 'record'" if filters.kind == "records" else "kind IN ('rejection', 'failed')"]
        args: list[Any] = []
        if len(chosen) < len(self.catalogue()):
            pairs = [(s.dataset, s.stored) for s in chosen] or [("", "")]
            where.append(f"(dataset, subset) IN (VALUES {','.join(['(?, ?)'] * len(pairs))})")
            args += [value for pair in pairs for value in pair]
        if filters.correct and filters.kind == "records":
            where.append("json_extract(payload, '$.correct') = ?")
            args.append(1 if filters.correct == "yes" else 0)
        if filters.reason and filters.kind == "rejections":
            where.append("json_extract(payload, '$.reason') = ?")
            args.append(filters.reason)
        if filters.text:
            pattern = _like(filters.text)
            fields = SEARCHED[filters.kind]
            exact = " OR ".join(f"json_extract(payload, '$.{name}') LIKE ? ESCAPE '\\'" for name in fields)
            # The payload holds the text as JSON spells it: a cheap first pass unless escaping would change it.
            if not any(c in filters.text for c in '"\\') and filters.text.isprintable():
                where.append("payload LIKE ? ESCAPE '\\'")
                args.append(pattern)
            where.append(f"({exact})")
            args += [pattern] * len(fields)
        return " AND ".join(where), args

    def page(self, filters: Filters, size: int = PAGE_SIZE) -> Page:
        chosen = self.chosen(filters)
        where, args = self._where(filters, chosen)
        with self._read() as db:
            exported = self._exported(db) if filters.text else None
            if exported is not None:  # a text search reads every row: the columns do it several times faster
                return exported.page(filters, size)
            found = db.execute(
                f"SELECT kind, dataset, subset, payload FROM answers WHERE {where} "
                "ORDER BY dataset, subset, rowid LIMIT ? OFFSET ?",
                (*args, size + 1, filters.page * size),
            ).fetchall()
        return Page([self._row(*row) for row in found[:size]], total_of(filters, chosen), len(found) > size)

    def count(self, filters: Filters) -> int:
        where, args = self._where(filters, self.chosen(filters))
        with self._read() as db:
            exported = self._exported(db) if filters.text else None
            if exported is not None:
                return exported.count(filters)
            return db.execute(f"SELECT count(*) FROM answers WHERE {where}", args).fetchone()[0]

    def _row(self, kind: str, dataset: str, stored: str, payload: str) -> dict[str, Any]:
        if not self._by_stored:
            self.catalogue()
        return {**json.loads(payload), "kind": kind, "subset": self._by_stored.get((dataset, stored), stored)}

    @staticmethod
    def _needle(problem_id: str) -> str:
        return '"problem_id":' + json.dumps(problem_id, ensure_ascii=False)

    def question(self, problem_id: str) -> list[dict[str, Any]]:
        self.catalogue()
        with self._read() as db:
            exported = self._exported(db)
            if exported is not None:
                return exported.question(problem_id)
            found = db.execute(
                "SELECT kind, dataset, subset, payload FROM answers WHERE instr(payload, ?) > 0 "
                "AND json_extract(payload, '$.problem_id') = ? ORDER BY rowid",
                (self._needle(problem_id), problem_id),
            ).fetchall()
        return [self._row(*row) for row in found]

    def neighbours(self, problem_id: str) -> tuple[str | None, str | None]:
        needle = self._needle(problem_id)
        with self._read() as db:
            exported = self._exported(db)
            if exported is not None:
                return exported.neighbours(problem_id)
            for info in self.catalogue():
                if not info.records:
                    continue
                span = db.execute(
                    "SELECT min(rowid), max(rowid) FROM answers WHERE kind = 'record' AND dataset = ? AND subset = ? "
                    "AND instr(payload, ?) > 0",
                    (info.dataset, info.stored, needle),
                ).fetchone()
                if span[0] is None:
                    continue
                step = (
                    "SELECT json_extract(payload, '$.problem_id') FROM answers WHERE kind = 'record' AND dataset = ? "
                    "AND subset = ? AND rowid {} ? AND instr(payload, ?) = 0 ORDER BY rowid {} LIMIT 1"
                )
                around = []
                for op, order, rowid in (("<", "DESC", span[0]), (">", "ASC", span[1])):
                    row = db.execute(step.format(op, order), (info.dataset, info.stored, rowid, needle)).fetchone()
                    around.append(row[0] if row else None)
                return around[0], around[1]
        return None, None

    def first_question(self) -> str | None:
        with self._read() as db:
            row = db.execute(
                "SELECT json_extract(payload, '$.problem_id') FROM answers WHERE kind = 'record' "
                "ORDER BY dataset, subset, rowid LIMIT 1"
            ).fetchone()
        return row[0] if row else None

    def find_questions(self, text: str, limit: int = 20) -> list[tuple[str, str]]:
        with self._read() as db:
            exported = self._exported(db)
            if exported is not None:
                return exported.find_questions(text, limit)
            pattern = _like(text)
            return db.execute(
                "SELECT json_extract(payload, '$.problem_id') AS id, min(json_extract(payload, '$.question')) "
                "FROM answers WHERE kind = 'record' AND payload LIKE ? ESCAPE '\\' "
                "AND json_extract(payload, '$.question') LIKE ? ESCAPE '\\' GROUP BY id ORDER BY min(rowid) LIMIT ?",
                (pattern, pattern, limit),
            ).fetchall()


def open_reader(path: Path) -> Reader:
    """The reader of a build directory: its store when it has one, else its Parquet outputs."""
    build = BuildDir(path)
    if build.store_path.exists():
        return StoreReader(build)
    if build.is_build():
        return ParquetReader(build)
    raise ViewError(f"{path}: not a build directory (no {build.store_path.name} and no {build.subsets_dir.name}/)")
