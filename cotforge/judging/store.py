"""The judge's own store, judge.sqlite beside the build's store (a build pulled from the Hub has no store.sqlite,
and judging never writes to the answers' store): one row per record, rubric, rubric version and judge model,
committed as it arrives, so a killed run resumes and no verdict is paid for twice. A request that failed is kept as
'failed' and asked again on the next run; a malformed verdict is a 'rejection' and is kept, as a score is."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from cotforge.builders.store import Store, StoreError
from cotforge.corpus import BuildDirError
from cotforge.safety.diskfull import writing
from cotforge.schemas.judge import JudgeOutcome, JudgeRejection, JudgeScore

SCORE, REJECTION, FAILED = "score", "rejection", "failed"
# Each record's most recent judgement per rubric (any version, any judge).
_LATEST = (
    "SELECT key, kind, payload FROM judgements j WHERE kind != 'failed' AND stored_at = (SELECT max(stored_at) "
    "FROM judgements i WHERE i.key = j.key AND i.rubric = j.rubric AND i.kind != 'failed') ORDER BY rowid"
)

_TABLE = """
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT NOT NULL,           -- the judged record's key
    rubric TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    judge_model TEXT NOT NULL,
    kind TEXT NOT NULL,          -- score | rejection | failed (failed ones are asked again on the next run)
    payload TEXT NOT NULL,       -- the JudgeScore or JudgeRejection as JSON; for failed, the error
    stored_at REAL NOT NULL,
    PRIMARY KEY (key, rubric, rubric_version, judge_model)
);
"""


class JudgeStore:
    """`teacher_store`: the same file as a build store, which a Batch API judge keeps its batch ids in."""

    def __init__(self, path: Path) -> None:
        try:
            self.teacher_store = Store(path)
            self.db = self.teacher_store.db
            self.db.executescript(_TABLE)
        except (StoreError, sqlite3.DatabaseError):
            # Salvage rebuilds store.sqlite, not this file: its verdicts can only be asked again.
            raise BuildDirError(
                f"{path}: not a readable judge store; move it aside and run the same command to judge again (the "
                "build's records are untouched)"
            ) from None
        self.path = path

    def close(self) -> None:
        self.teacher_store.close()

    def __enter__(self) -> JudgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def settled(self, rubric: str, version: str, judge_model: str) -> set[str]:
        """Keys of the records this rubric's version has a verdict (or a rejection) for from this judge."""
        found = self.db.execute(
            "SELECT key FROM judgements WHERE rubric = ? AND rubric_version = ? AND judge_model = ? "
            "AND kind != 'failed'",
            (rubric, version, judge_model),
        )
        return {key for (key,) in found}

    def put(self, outcome: JudgeOutcome) -> None:
        kind = SCORE if isinstance(outcome, JudgeScore) else REJECTION
        self._put(
            outcome.key, outcome.rubric, outcome.rubric_version, outcome.judge_model, kind, outcome.model_dump_json()
        )

    def put_failed(self, key: str, rubric: str, version: str, judge_model: str, detail: str) -> None:
        self._put(key, rubric, version, judge_model, FAILED, detail)

    def _put(self, key: str, rubric: str, version: str, model: str, kind: str, payload: str) -> None:
        with writing(self.path):
            self.db.execute(
                "INSERT INTO judgements VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET kind = excluded.kind, "
                "payload = excluded.payload, stored_at = excluded.stored_at WHERE judgements.kind = 'failed'",
                (key, rubric, version, model, kind, payload, time.time()),
            )

    def latest(self, keys: set[str]) -> Iterator[JudgeScore | JudgeRejection]:
        """For each record of `keys` and each rubric, its most recent judgement (any version, any judge): judging
        again with a new version or judge replaces what the build's files show, and the older verdicts stay here."""
        for key, kind, payload in self.db.execute(_LATEST):
            if key in keys:
                yield (JudgeScore if kind == SCORE else JudgeRejection).model_validate_json(payload)

    def failed(self) -> int:
        return self.db.execute("SELECT count(*) FROM judgements WHERE kind = 'failed'").fetchone()[0]


def latest_scores(path: Path) -> list[JudgeScore]:
    """Each record's most recent score per rubric in the judge store at `path`, read-only (the viewer, while a
    judge may be writing); BuildDirError when it cannot be read."""
    try:
        db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        try:
            found = db.execute(_LATEST).fetchall()
        finally:
            db.close()
    except sqlite3.Error as error:
        raise BuildDirError(f"{path}: not a readable judge store ({error})") from None
    return [JudgeScore.model_validate_json(payload) for _, kind, payload in found if kind == SCORE]
