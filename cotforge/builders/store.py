"""The crash-safe store of a build: one SQLite row per teacher answer, committed as it arrives.

WAL mode with synchronous=NORMAL: a committed row survives the process being killed at any moment. Keys are the
answer hashes of cotforge.builders.plan, so a re-run asks only for what is missing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

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
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    teacher TEXT NOT NULL,
    request_ids TEXT NOT NULL,   -- JSON list of the request ids (custom_id) in the batch
    state TEXT NOT NULL DEFAULT 'open'   -- open until its results are stored
);
"""


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
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

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
        return {key for (key,) in self.db.execute("SELECT key FROM answers WHERE kind != 'failed'")}

    def rows(self, keys: Iterable[str] | None = None) -> Iterator[CoTRecord | Rejection]:
        wanted = set(keys) if keys is not None else None
        for key, kind, payload in self.db.execute("SELECT key, kind, payload FROM answers ORDER BY rowid"):
            if wanted is None or key in wanted:
                yield (CoTRecord if kind == RECORD else Rejection).model_validate_json(payload)

    def outcomes(self) -> Iterator[tuple[str, str, float | None]]:
        """(key, kind, cost in USD) of every stored answer, read without validating the records."""
        yield from self.db.execute("SELECT key, kind, json_extract(payload, '$.cost_usd') FROM answers")

    def record(self, key: str) -> CoTRecord | None:
        found = self.db.execute("SELECT payload FROM answers WHERE key = ? AND kind = ?", (key, RECORD)).fetchone()
        return CoTRecord.model_validate_json(found[0]) if found else None

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM answers").fetchone()[0]

    def stored_at(self) -> dict[str, float]:
        """When each key was committed (unix time)."""
        return dict(self.db.execute("SELECT key, stored_at FROM answers"))

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
