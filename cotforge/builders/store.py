"""The crash-safe store of a build: one SQLite row per teacher answer, committed as it arrives.

WAL mode with synchronous=NORMAL: a committed row survives the process being killed at any moment. Keys are the
answer hashes of cotforge.builders.plan, so a re-run asks only for what is missing. The chat sent to the teacher is
stored once per prompt (the n samples of a prompt, and every answer of a rewrite source, share it) and joined back
when rows are read. Reads stream: nothing here holds a whole build in memory.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from cotforge.builders.keyset import KeySet
from cotforge.safety.diskfull import writing
from cotforge.schemas.record import AnswerOrigin, CoTRecord, Rejection, RejectionReason

RECORD, REJECTION, FAILED = "record", "rejection", "failed"
_DERIVED = set(CoTRecord.model_computed_fields)  # training views, rebuilt from the stored fields on load

_TABLES = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,          -- record | rejection | failed (failed ones are asked again on the next run)
    subset TEXT NOT NULL,        -- teacher-level-format, without the data set
    payload TEXT NOT NULL,       -- the CoTRecord or Rejection as JSON, less messages_sent when prompt_id is set
    stored_at REAL NOT NULL,     -- unix time of the commit
    dataset TEXT,                -- the problem's data set (added in the second layout)
    prompt_id TEXT               -- the chat sent, in prompts (added in the second layout)
);
CREATE TABLE IF NOT EXISTS prompts (
    id TEXT PRIMARY KEY,         -- hash of messages
    messages TEXT NOT NULL       -- JSON list of {role, content}
);
CREATE TABLE IF NOT EXISTS runs (
    started_at REAL NOT NULL,    -- unix time
    wall_s REAL NOT NULL,
    requests INTEGER NOT NULL,   -- HTTP requests or engine prompts sent, retries included
    stored INTEGER NOT NULL      -- answers stored by this run
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    teacher TEXT NOT NULL,
    request_ids TEXT NOT NULL,   -- JSON list of the request ids (custom_id) in the batch
    state TEXT NOT NULL DEFAULT 'open'   -- open until its results are stored
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
# After the columns exist: `changes` counts every write to answers, so an export can tell that nothing changed.
_INDEXES = """
CREATE INDEX IF NOT EXISTS answers_by_subset ON answers (kind, dataset, subset);
INSERT OR IGNORE INTO meta VALUES ('changes', 0), ('exported', -1);
CREATE TRIGGER IF NOT EXISTS answer_added AFTER INSERT ON answers
    BEGIN UPDATE meta SET value = value + 1 WHERE name = 'changes'; END;
CREATE TRIGGER IF NOT EXISTS answer_replaced AFTER UPDATE ON answers
    BEGIN UPDATE meta SET value = value + 1 WHERE name = 'changes'; END;
"""
_FIRST_LAYOUT = {"key", "kind", "subset", "payload", "stored_at"}
_COLUMNS = _FIRST_LAYOUT | {"dataset", "prompt_id"}
_BY_QUESTION = "json_extract({table}payload, '$.problem_id'), {table}key"
_JOINED = "SELECT a.key, a.kind, a.payload, p.messages FROM answers a LEFT JOIN prompts p ON p.id = a.prompt_id"


class StoreError(RuntimeError):
    """A store that cannot be read: the message names the file and the way out."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(
            f"{path}: {what}. `cotforge salvage {path.parent}` copies every readable answer (and the records of "
            "the Parquet outputs) into a fresh store and keeps the damaged file beside it"
        )


@contextmanager
def _readable(path: Path, what: str = "not a readable cotforge store") -> Iterator[None]:
    try:
        yield
    except sqlite3.DatabaseError as error:  # garbled, truncated, malformed JSON in a row, another layout
        raise StoreError(path, f"{what} ({error})") from None


def payload_row(kind: str, payload: str, messages: str | None = None) -> CoTRecord | Rejection:
    """A stored payload (and the chat stored apart from it) as its typed row; raises ValueError when damaged."""
    model = CoTRecord if kind == RECORD else Rejection
    if messages is None:
        return model.model_validate_json(payload)
    return model.model_validate({**json.loads(payload), "messages_sent": json.loads(messages)})


def fold_wal(path: Path) -> None:
    """The store's WAL folded into its file, and no WAL kept after: a single file, safe to rename."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()


def kind_of(row: AnswerOrigin) -> str:
    """How the store files an answer: a record, a rejection, or a failure to ask again."""
    if isinstance(row, CoTRecord):
        return RECORD
    if isinstance(row, Rejection):
        return FAILED if row.reason is RejectionReason.api_error else REJECTION
    raise TypeError(f"cannot store {type(row).__name__}")


@dataclass
class Totals:
    """The figures of a build's report, summed by SQL over the stored answers."""

    stored: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> answers
    failed: dict[str, int] = field(default_factory=dict)  # detail -> answers
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # None when no answer has a cost


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit, and explicit BEGIN where needed
        try:
            with _readable(path):
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(_TABLES)
                columns = {row[1] for row in self.db.execute("PRAGMA table_info(answers)")}
                if columns == _FIRST_LAYOUT:
                    self._upgrade()
                elif columns != _COLUMNS:
                    raise StoreError(
                        path, f"its answers table has another layout (columns {', '.join(sorted(columns))})"
                    )
                self.db.executescript(_INDEXES)
        except StoreError:
            self.db.close()
            raise

    def _upgrade(self) -> None:
        """A store of the first layout (messages inside every payload) gains the new columns; its rows stay as
        they are and read as before."""
        self.db.executescript(
            "BEGIN; ALTER TABLE answers ADD COLUMN dataset TEXT; ALTER TABLE answers ADD COLUMN prompt_id TEXT; "
            "UPDATE answers SET dataset = json_extract(payload, '$.dataset'); COMMIT;"
        )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, row: AnswerOrigin) -> None:
        self.put_all([row])

    def put_all(self, rows: Iterable[AnswerOrigin]) -> None:
        """Store answers in one commit. A key is written once; only a 'failed' row may be replaced (by its retry)."""
        with writing(self.path):  # a full disk: the transaction is rolled back, nothing stored is lost
            self._put_all(rows)

    def _put_all(self, rows: Iterable[AnswerOrigin]) -> None:
        self.db.execute("BEGIN")
        try:
            for row in rows:
                exclude = _DERIVED
                prompt_id = None
                if isinstance(row, CoTRecord) and row.messages_sent:
                    messages = json.dumps([m.model_dump() for m in row.messages_sent], ensure_ascii=False)
                    prompt_id = hashlib.sha256(messages.encode()).hexdigest()[:32]
                    self.db.execute("INSERT OR IGNORE INTO prompts VALUES (?, ?)", (prompt_id, messages))
                    exclude = _DERIVED | {"messages_sent"}
                self.db.execute(
                    "INSERT INTO answers (key, kind, subset, payload, stored_at, dataset, prompt_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, "
                    "payload = excluded.payload, stored_at = excluded.stored_at, prompt_id = excluded.prompt_id "
                    "WHERE answers.kind = 'failed'",
                    (
                        row.key,
                        kind_of(row),
                        row.subset,
                        row.model_dump_json(exclude=exclude),
                        time.time(),
                        row.dataset,
                        prompt_id,
                    ),
                )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def settled_keys(self) -> KeySet:
        """Keys that need no more requests: records and rejections (a failure is tried again), as digests."""
        with _readable(self.path):
            return KeySet.of(key for (key,) in self.db.execute("SELECT key FROM answers WHERE kind != 'failed'"))

    def correct_keys(self) -> KeySet:
        """Keys of the records whose answer matches gold (top-up sampling counts them)."""
        with _readable(self.path):
            found = self.db.execute(
                "SELECT key FROM answers WHERE kind = 'record' AND json_extract(payload, '$.correct')"
            )
            return KeySet.of(key for (key,) in found)

    def stored_keys(self) -> Iterator[str]:
        with _readable(self.path):
            for (key,) in self.db.execute("SELECT key FROM answers"):
                yield key

    def _typed(self, key: str, kind: str, payload: str, messages: str | None) -> CoTRecord | Rejection:
        try:
            return payload_row(kind, payload, messages)
        except (ValidationError, ValueError) as error:
            why = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
            raise StoreError(self.path, f"the stored answer {key} is damaged ({why})") from None

    def _select(
        self, where: str = "", args: tuple[str, ...] = (), order: str = "a.rowid"
    ) -> Iterator[CoTRecord | Rejection]:
        with _readable(self.path):
            for key, kind, payload, messages in self.db.execute(f"{_JOINED} {where} ORDER BY {order}", args):
                yield self._typed(key, kind, payload, messages)

    def rows(self) -> Iterator[CoTRecord | Rejection]:
        """Every stored answer, typed, in the order they arrived, one at a time."""
        return self._select()

    def records(self, dataset: str, subset: str, by_question: bool = False) -> Iterator[CoTRecord]:
        """The accepted answers of one subset of one data set, in the order they arrived, or `by_question`
        (ordered by problem id, then key: a question's answers come together)."""
        where = "WHERE a.kind = 'record' AND a.dataset = ? AND a.subset = ?"
        order = _BY_QUESTION.format(table="a.") if by_question else "a.rowid"
        for row in self._select(where, (dataset, subset), order):
            assert isinstance(row, CoTRecord)
            yield row

    def answers_by_question(self, dataset: str, subset: str) -> Iterator[tuple[str, str]]:
        """(kind, payload JSON without the chat) of the records and rejections of one subset (failures left out),
        ordered by problem id then key, read without validating them: what quality signals need."""
        with _readable(self.path):
            yield from self.db.execute(
                f"SELECT kind, payload FROM answers WHERE kind != 'failed' AND dataset = ? AND subset = ? "
                f"ORDER BY {_BY_QUESTION.format(table='')}",
                (dataset, subset),
            )

    def rejections(self) -> Iterator[Rejection]:
        """Every answer that is not a record (rejected or failed), in the order they arrived."""
        for row in self._select("WHERE a.kind != 'record'"):
            assert isinstance(row, Rejection)
            yield row

    def subsets(self) -> dict[tuple[str, str], int]:
        """(data set, subset) -> accepted answers, from the index."""
        with _readable(self.path):
            found = self.db.execute(
                "SELECT dataset, subset, count(*) FROM answers WHERE kind = 'record' GROUP BY dataset, subset"
            )
            return {(dataset, subset): count for dataset, subset, count in found}

    def datasets(self) -> int:
        """How many data sets the stored answers come from."""
        with _readable(self.path):
            return self.db.execute("SELECT count(DISTINCT dataset) FROM answers").fetchone()[0]

    def totals(self) -> Totals:
        with _readable(self.path):
            found = self.db.execute(
                "SELECT kind, CASE kind WHEN 'rejection' THEN json_extract(payload, '$.reason') "
                "WHEN 'failed' THEN json_extract(payload, '$.detail') END, count(*), "
                "total(json_extract(payload, '$.usage.prompt_tokens')), "
                "total(json_extract(payload, '$.usage.completion_tokens')), "
                "count(json_extract(payload, '$.cost_usd')), total(json_extract(payload, '$.cost_usd')) "
                "FROM answers GROUP BY 1, 2"
            ).fetchall()
        totals = Totals()
        for kind, why, count, prompt_tokens, completion_tokens, priced, cost in found:
            totals.stored += count
            if kind == RECORD:
                totals.accepted += count
            else:
                (totals.rejected if kind == REJECTION else totals.failed)[why] = count
            totals.prompt_tokens += int(prompt_tokens)
            totals.completion_tokens += int(completion_tokens)
            if priced:
                totals.cost_usd = (totals.cost_usd or 0.0) + cost
        return totals

    def outcomes(self) -> Iterator[tuple[str, str, float | None]]:
        """(key, kind, cost in USD) of every stored answer, read without validating the records."""
        with _readable(self.path):
            yield from self.db.execute("SELECT key, kind, json_extract(payload, '$.cost_usd') FROM answers")

    def record(self, key: str) -> CoTRecord | None:
        found = next(self._select("WHERE a.key = ? AND a.kind = ?", (key, RECORD)), None)
        assert found is None or isinstance(found, CoTRecord)
        return found

    def count(self) -> int:
        with _readable(self.path):
            return self.db.execute("SELECT count(*) FROM answers").fetchone()[0]

    # ---- exports: a resume that changed nothing rewrites nothing ----

    def changes(self) -> int:
        """A counter of every write to the answers, ever."""
        return self.db.execute("SELECT value FROM meta WHERE name = 'changes'").fetchone()[0]

    def exported(self) -> int:
        """The value of changes() when the outputs were last written in full."""
        return self.db.execute("SELECT value FROM meta WHERE name = 'exported'").fetchone()[0]

    def mark_exported(self, changes: int) -> None:
        self.db.execute("UPDATE meta SET value = ? WHERE name = 'exported'", (changes,))

    # ---- runs: the report describes the whole corpus, every run of it ----

    def start_run(self) -> int:
        """A new run's row, kept current by update_run, so a killed run still counts (up to its last update)."""
        return self.db.execute("INSERT INTO runs VALUES (?, 0, 0, 0)", (time.time(),)).lastrowid or 0

    def forget_run(self, run: int) -> None:
        """A run that asked nothing and stored nothing leaves no trace."""
        self.db.execute("DELETE FROM runs WHERE rowid = ?", (run,))

    def update_run(self, run: int, wall_s: float, requests: int, stored: int) -> None:
        self.db.execute(
            "UPDATE runs SET wall_s = ?, requests = ?, stored = ? WHERE rowid = ?", (wall_s, requests, stored, run)
        )

    def run_totals(self) -> tuple[int, float, int]:
        """(runs, wall seconds, requests) over every run of the build."""
        runs, wall, requests = self.db.execute("SELECT count(*), total(wall_s), total(requests) FROM runs").fetchone()
        return runs, wall, int(requests)

    # ---- Batch API bookkeeping: a killed run finds its batches again ----

    def add_batch(self, batch_id: str, teacher: str, request_ids: list[str]) -> None:
        self.db.execute(
            "INSERT INTO batches (batch_id, teacher, request_ids) VALUES (?, ?, ?)",
            (batch_id, teacher, json.dumps(request_ids)),
        )

    def open_batches(self, teacher: str) -> list[tuple[str, list[str]]]:
        found = self.db.execute(
            "SELECT batch_id, request_ids FROM batches WHERE teacher = ? AND state = 'open' ORDER BY rowid", (teacher,)
        )
        return [(batch_id, json.loads(ids)) for batch_id, ids in found]

    def close_batch(self, batch_id: str) -> None:
        self.db.execute("UPDATE batches SET state = 'done' WHERE batch_id = ?", (batch_id,))
