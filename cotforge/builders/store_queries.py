"""Read-only queries on a build's store, for a reader beside a running build (the viewer): each `read_only` is one
short transaction, a consistent view that never blocks the build's writer, and every answer comes back typed.

The tables, columns and JSON paths are those store.py writes; it and this module are the only places that spell
them (tests/test_layers.py checks that no other module holds SQL)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from cotforge.builders.store import FAILED, RECORD, REJECTION

_SALVAGE_CHUNK = 500  # rows read at once from a damaged store before falling back to one at a time
_FIGURES = (
    "count(*), total(json_extract(payload, '$.correct')), total(length(json_extract(payload, '$.rationale'))), "
    "total(json_array_length(payload, '$.steps')), total(json_extract(payload, '$.usage.prompt_tokens')), "
    "total(json_extract(payload, '$.usage.completion_tokens')), count(json_extract(payload, '$.cost_usd')), "
    "total(json_extract(payload, '$.cost_usd'))"
)
_SHAPE = (
    "SELECT json_extract(payload, '$.teacher'), json_extract(payload, '$.granularity'), "
    "json_extract(payload, '$.format') FROM answers WHERE dataset = ? AND subset = ?"
)
# The next (>) or previous (<) question's id in one subset, from a question's first or last row.
_STEP = (
    "SELECT json_extract(payload, '$.problem_id') FROM answers WHERE kind = 'record' AND dataset = ? "
    "AND subset = ? AND rowid {} ? AND instr(payload, ?) = 0 ORDER BY rowid {} LIMIT 1"
)


class StoreReadError(ValueError):
    """A store that cannot be read: the message names the file and why."""


@dataclass
class Figures:
    """Sums over a subset's answers, from which the overview's statistics are read."""

    records: int = 0
    correct: int = 0
    rationale_chars: int = 0
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    priced: int = 0
    cost_usd: float = 0.0

    def add(self, other: Figures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class SubsetCounts:
    """One stored subset (its store name, without the data set) and its answers by kind."""

    dataset: str
    subset: str
    records: int = 0
    rejections: int = 0  # rejected or failed


@dataclass(frozen=True)
class SubsetShape:
    """What a subset's answers were asked with, read from one of them."""

    teacher: str
    granularity: int | None
    format: str


@dataclass(frozen=True)
class SubsetSums:
    """The figures of one subset's answers of one kind (rejections: of one reason)."""

    kind: str
    dataset: str
    subset: str
    reason: str | None  # None for records
    figures: Figures = field(default_factory=Figures)


@dataclass(frozen=True)
class StoredAnswer:
    """One stored answer: its kind, where it is filed, and its JSON (the record or rejection less the chat sent)."""

    kind: str
    dataset: str
    subset: str
    payload: str

    def fields(self) -> dict[str, Any]:
        return json.loads(self.payload)


@dataclass(frozen=True)
class AnswerQuery:
    """Which stored answers a page asks for."""

    rejections: bool = False  # records, or rejected and failed answers
    subsets: tuple[tuple[str, str], ...] | None = None  # (data set, store subset) pairs; None for every subset
    correct: bool | None = None  # records only
    reason: str | None = None  # rejections only
    text: str = ""  # found, in any case, in one of `searched`
    searched: tuple[str, ...] = ()  # the payload's fields the text is looked for in
    keys: tuple[str, ...] | None = None  # only these answers (the judge filter); None for any


class QuestionMatch(NamedTuple):
    problem_id: str
    question: str


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _needle(problem_id: str) -> str:
    """A question's id as its payloads spell it: instr() on it finds the rows before any JSON is parsed."""
    return '"problem_id":' + json.dumps(problem_id, ensure_ascii=False)


def _marks(count: int) -> str:
    return ",".join("?" * count)


@contextmanager
def read_only(path: Path) -> Iterator[StoreSnapshot]:
    """One short read-only transaction on the store at `path`; StoreReadError when it cannot be read."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as error:
        raise StoreReadError(f"{path}: cannot be read ({error})") from None
    try:
        db.execute("BEGIN")
        yield StoreSnapshot(db)
    except sqlite3.DatabaseError as error:
        raise StoreReadError(f"{path}: not a readable cotforge store ({error})") from None
    finally:
        db.close()


class StoreSnapshot:
    """The queries, inside one read transaction (see read_only)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def changes(self) -> int | None:
        """The store's count of writes; None for a store from before it was kept."""
        try:
            found = self._db.execute("SELECT value FROM meta WHERE name = 'changes'").fetchone()
        except sqlite3.OperationalError:
            return None
        return None if found is None else found[0]

    def export_marks(self) -> tuple[int, int] | None:
        """(count of writes, that count when the outputs were last written); None for a store without them."""
        try:
            changes, exported = self._db.execute(
                "SELECT (SELECT value FROM meta WHERE name = 'changes'), "
                "(SELECT value FROM meta WHERE name = 'exported')"
            ).fetchone()
        except sqlite3.OperationalError:
            return None
        return changes, exported

    def subset_counts(self) -> list[SubsetCounts]:
        """Every stored subset with its records and its rejected or failed answers, from the index."""
        found: dict[tuple[str, str], list[int]] = {}
        counts = self._db.execute("SELECT kind, dataset, subset, count(*) FROM answers GROUP BY kind, dataset, subset")
        for kind, dataset, subset, count in counts.fetchall():
            found.setdefault((dataset, subset), [0, 0])[kind != RECORD] += count
        return [SubsetCounts(dataset, subset, *counts) for (dataset, subset), counts in found.items()]

    def subset_shape(self, counts: SubsetCounts) -> SubsetShape:
        """Teacher, level and format of a subset, read from a record (else a rejection, else any answer)."""
        kind = RECORD if counts.records else REJECTION if counts.rejections else FAILED
        args = (counts.dataset, counts.subset)
        row = self._db.execute(f"{_SHAPE} AND kind = ? LIMIT 1", (*args, kind)).fetchone()
        return SubsetShape(*(row or self._db.execute(f"{_SHAPE} LIMIT 1", args).fetchone()))

    def last_rowid(self) -> int:
        return self._db.execute("SELECT max(rowid) FROM answers").fetchone()[0] or 0

    def failed_rowids(self, after: int = 0, upto: int | None = None) -> set[int]:
        """Rows of answers that failed (to be asked again), after rowid `after` up to `upto` (the last if None)."""
        found = self._db.execute(
            "SELECT rowid FROM answers WHERE rowid > ? AND rowid <= ? AND kind = 'failed'",
            (after, self.last_rowid() if upto is None else upto),
        )
        return {rowid for (rowid,) in found}

    def settled(self, rowids: set[int]) -> set[int]:
        """Those of `rowids` that are no longer failed answers (their retry stored a record or a rejection)."""
        found = self._db.execute(
            f"SELECT rowid FROM answers WHERE rowid IN ({_marks(len(rowids))}) AND kind != 'failed'", tuple(rowids)
        )
        return {rowid for (rowid,) in found}

    def _sums(self, where: str, args: tuple[int, ...]) -> list[SubsetSums]:
        rows = self._db.execute(
            f"SELECT kind, dataset, subset, CASE kind WHEN 'record' THEN NULL ELSE json_extract(payload, '$.reason') "
            f"END, {_FIGURES} FROM answers WHERE {where} GROUP BY 1, 2, 3, 4",
            args,
        )
        found = []
        for kind, dataset, subset, reason, count, correct, chars, steps, prompt, completion, priced, cost in rows:
            figures = Figures(count, int(correct), int(chars), int(steps), int(prompt), int(completion), priced, cost)
            found.append(SubsetSums(kind, dataset, subset, reason, figures))
        return found

    def sums_between(self, after: int, upto: int) -> list[SubsetSums]:
        """The figures of the records and rejections stored after rowid `after` up to `upto` (failures left out)."""
        return self._sums("rowid > ? AND rowid <= ? AND kind != 'failed'", (after, upto))

    def sums_of(self, rowids: set[int]) -> list[SubsetSums]:
        return self._sums(f"rowid IN ({_marks(len(rowids))})", tuple(rowids))

    def failed_details(self) -> dict[str, int]:
        """Failed answers by their detail."""
        found = self._db.execute(
            "SELECT json_extract(payload, '$.detail'), count(*) FROM answers WHERE kind = 'failed' GROUP BY 1"
        )
        return {detail or "": count for detail, count in found}

    @staticmethod
    def _where(query: AnswerQuery) -> tuple[str, list[Any]]:
        where = ["kind IN ('rejection', 'failed')" if query.rejections else "kind = 'record'"]
        args: list[Any] = []
        if query.subsets is not None:
            pairs = query.subsets or (("", ""),)
            where.append(f"(dataset, subset) IN (VALUES {','.join(['(?, ?)'] * len(pairs))})")
            args += [value for pair in pairs for value in pair]
        if query.correct is not None and not query.rejections:
            where.append("json_extract(payload, '$.correct') = ?")
            args.append(1 if query.correct else 0)
        if query.reason and query.rejections:
            where.append("json_extract(payload, '$.reason') = ?")
            args.append(query.reason)
        if query.keys is not None:
            where.append("key IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(query.keys))
        if query.text:
            pattern = _like(query.text)
            exact = " OR ".join(f"json_extract(payload, '$.{name}') LIKE ? ESCAPE '\\'" for name in query.searched)
            # The payload holds the text as JSON spells it: a cheap first pass unless escaping would change it.
            if not any(c in query.text for c in '"\\') and query.text.isprintable():
                where.append("payload LIKE ? ESCAPE '\\'")
                args.append(pattern)
            where.append(f"({exact})")
            args += [pattern] * len(query.searched)
        return " AND ".join(where), args

    def answers(self, query: AnswerQuery, limit: int, offset: int) -> list[StoredAnswer]:
        """The answers `query` picks, ordered by data set, subset and arrival, `limit` of them from `offset`."""
        where, args = self._where(query)
        found = self._db.execute(
            f"SELECT kind, dataset, subset, payload FROM answers WHERE {where} "
            "ORDER BY dataset, subset, rowid LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [StoredAnswer(*row) for row in found.fetchall()]

    def count(self, query: AnswerQuery) -> int:
        where, args = self._where(query)
        return self._db.execute(f"SELECT count(*) FROM answers WHERE {where}", args).fetchone()[0]

    def answers_to(self, problem_id: str) -> list[StoredAnswer]:
        """Every stored answer to one problem, in the order they arrived."""
        found = self._db.execute(
            "SELECT kind, dataset, subset, payload FROM answers WHERE instr(payload, ?) > 0 "
            "AND json_extract(payload, '$.problem_id') = ? ORDER BY rowid",
            (_needle(problem_id), problem_id),
        )
        return [StoredAnswer(*row) for row in found.fetchall()]

    def neighbours(self, dataset: str, subset: str, problem_id: str) -> tuple[str | None, str | None] | None:
        """The questions before and after `problem_id` among one subset's records, in the order they arrived;
        None when the subset has no record of it."""
        needle = _needle(problem_id)
        first, last = self._db.execute(
            "SELECT min(rowid), max(rowid) FROM answers WHERE kind = 'record' AND dataset = ? AND subset = ? "
            "AND instr(payload, ?) > 0",
            (dataset, subset, needle),
        ).fetchone()
        if first is None:
            return None
        around = []
        for op, order, rowid in (("<", "DESC", first), (">", "ASC", last)):
            row = self._db.execute(_STEP.format(op, order), (dataset, subset, rowid, needle)).fetchone()
            around.append(row[0] if row else None)
        return around[0], around[1]

    def first_question(self) -> str | None:
        """The problem of the first record, in the order of the browse page."""
        row = self._db.execute(
            "SELECT json_extract(payload, '$.problem_id') FROM answers WHERE kind = 'record' "
            "ORDER BY dataset, subset, rowid LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    def find_questions(self, text: str, limit: int) -> list[QuestionMatch]:
        """The problems whose question holds `text` (any case), in the order they arrived."""
        pattern = _like(text)
        found = self._db.execute(
            "SELECT json_extract(payload, '$.problem_id') AS id, min(json_extract(payload, '$.question')) "
            "FROM answers WHERE kind = 'record' AND payload LIKE ? ESCAPE '\\' "
            "AND json_extract(payload, '$.question') LIKE ? ESCAPE '\\' GROUP BY id ORDER BY min(rowid) LIMIT ?",
            (pattern, pattern, limit),
        )
        return [QuestionMatch(*row) for row in found.fetchall()]


def readable_answers(path: Path, lost: Callable[[str], None]) -> Iterator[tuple[str, str, str | None]]:
    """(kind, payload, chat) of every row SQLite can still read from a damaged store (salvage): in chunks, then row
    by row where a chunk fails; `lost` hears why each unreadable part is lost. The chat is joined from the prompts
    table (a store of the first layout keeps it in the payload)."""
    try:
        db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)  # a '#' or '?' is no URI part
    except sqlite3.DatabaseError:
        lost("not an SQLite file")
        return
    try:
        try:
            (last,) = db.execute("SELECT max(rowid) FROM answers").fetchone()
            columns = {row[1] for row in db.execute("PRAGMA table_info(answers)")}
        except sqlite3.DatabaseError:
            lost("the answers table cannot be read at all")
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
                    f"{select} WHERE a.rowid > ? AND a.rowid <= ? ORDER BY a.rowid", (start, start + _SALVAGE_CHUNK)
                )
            except sqlite3.DatabaseError:
                for rowid in range(start + 1, start + _SALVAGE_CHUNK + 1):
                    try:
                        yield from db.execute(f"{select} WHERE a.rowid = ?", (rowid,)).fetchall()
                    except sqlite3.DatabaseError:
                        lost("damaged page")
            start += _SALVAGE_CHUNK
    finally:
        db.close()
