"""The crash-safe store of a build: one SQLite row per teacher answer, committed as it arrives.

WAL mode with synchronous=NORMAL: a committed row survives the process being killed at any moment. Keys are the
answer hashes of cotforge.builders.plan, so a re-run asks only for what is missing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from cotforge.schemas.record import AnswerOrigin, CoTRecord, Rejection, RejectionReason

RECORD, REJECTION, FAILED = "record", "rejection", "failed"
_DERIVED = set(CoTRecord.model_computed_fields)  # training views, rebuilt from the stored fields on load

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,          -- record | rejection | failed (failed ones are asked again on the next run)
    subset TEXT NOT NULL,
    payload TEXT NOT NULL,       -- the CoTRecord or Rejection as JSON
    stored_at REAL NOT NULL      -- unix time of the commit
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
"""


_COLUMNS = {"key", "kind", "subset", "payload", "stored_at"}


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


def payload_row(kind: str, payload: str) -> CoTRecord | Rejection:
    """A stored payload as its typed row; raises ValueError when it is damaged."""
    return (CoTRecord if kind == RECORD else Rejection).model_validate_json(payload)


def kind_of(row: AnswerOrigin) -> str:
    """How the store files an answer: a record, a rejection, or a failure to ask again."""
    if isinstance(row, CoTRecord):
        return RECORD
    if isinstance(row, Rejection):
        return FAILED if row.reason is RejectionReason.api_error else REJECTION
    raise TypeError(f"cannot store {type(row).__name__}")


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit: each statement is its own commit
        try:
            with _readable(path):
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(_SCHEMA)
                columns = {row[1] for row in self.db.execute("PRAGMA table_info(answers)")}
            if columns != _COLUMNS:
                raise StoreError(path, f"its answers table has another layout (columns {', '.join(sorted(columns))})")
        except StoreError:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, row: AnswerOrigin) -> None:
        """Store one answer. A key is written once; only a 'failed' row may be replaced (by its retry)."""
        kind = kind_of(row)
        self.db.execute(
            "INSERT INTO answers (key, kind, subset, payload, stored_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, payload = excluded.payload, "
            "stored_at = excluded.stored_at WHERE answers.kind = 'failed'",
            (row.key, kind, row.subset, row.model_dump_json(exclude=_DERIVED), time.time()),
        )

    def settled_keys(self) -> set[str]:
        """Keys that need no more requests: records and rejections (a failure is tried again)."""
        with _readable(self.path):
            return {key for (key,) in self.db.execute("SELECT key FROM answers WHERE kind != 'failed'")}

    def _typed(self, key: str, kind: str, payload: str) -> CoTRecord | Rejection:
        try:
            return payload_row(kind, payload)
        except ValidationError as error:
            raise StoreError(self.path, f"the stored answer {key} is damaged ({error.errors()[0]['msg']})") from None

    def rows(self) -> Iterator[CoTRecord | Rejection]:
        """Every stored answer, typed, in the order they arrived."""
        with _readable(self.path):
            for key, kind, payload in self.db.execute("SELECT key, kind, payload FROM answers ORDER BY rowid"):
                yield self._typed(key, kind, payload)

    def outcomes(self) -> Iterator[tuple[str, str, float | None]]:
        """(key, kind, cost in USD) of every stored answer, read without validating the records."""
        with _readable(self.path):
            yield from self.db.execute("SELECT key, kind, json_extract(payload, '$.cost_usd') FROM answers")

    def record(self, key: str) -> CoTRecord | None:
        with _readable(self.path):
            found = self.db.execute("SELECT payload FROM answers WHERE key = ? AND kind = ?", (key, RECORD)).fetchone()
        return self._typed(key, RECORD, found[0]) if found else None

    def count(self) -> int:
        with _readable(self.path):
            return self.db.execute("SELECT count(*) FROM answers").fetchone()[0]

    def stored_at(self) -> dict[str, float]:
        """When each key was committed (unix time)."""
        return dict(self.db.execute("SELECT key, stored_at FROM answers"))

    # ---- runs: the report describes the whole corpus, every run of it ----

    def start_run(self) -> int:
        """A new run's row, kept current by update_run, so a killed run still counts (up to its last update)."""
        return self.db.execute("INSERT INTO runs VALUES (?, 0, 0, 0)", (time.time(),)).lastrowid or 0

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
