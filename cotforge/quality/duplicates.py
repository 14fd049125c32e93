"""Near-duplicate rationales across questions: MinHash signatures (datasketch) banded as datasketch's MinHashLSH
bands them, the bands kept in a temporary SQLite file instead of dicts, so a million rationales take disk, not
memory."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

import numpy as np

from cotforge.quality import SIGNAL_CHARS, THRESHOLD

NUM_PERM = 128
SHINGLE_WORDS = 3
_BATCH = 2_000
_TOKEN = re.compile(r"\w+|[^\w\s]")
# Odd 64-bit multipliers that fold a band's r values into one integer key (collisions are caught by verification).
_FOLD = np.random.default_rng(0).integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)


def tokens(text: str) -> list[str]:
    """Lower-cased words and punctuation marks: the tokens of every text signal."""
    return _TOKEN.findall(text.lower())


def shingles(text: str) -> list[bytes]:
    words = tokens(text)
    if len(words) < SHINGLE_WORDS:
        return [" ".join(words).encode()]
    return [" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)]


class NearDuplicates:
    """Add rationales in a fixed order (question, then key; each read up to SIGNAL_CHARS characters); `duplicates()`
    then names each one whose estimated Jaccard similarity with an earlier rationale of another question, found
    through a shared LSH band, is at least THRESHOLD. Dropping those keeps the first rationale of each group of
    near-duplicates. Within a bucket, a rationale is compared with the bucket's first rationale of another question
    only, so the pass stays linear when every rationale shares a bucket (a template answer); a pair this skips in one
    band is usually caught in another, as LSH itself is approximate."""

    def __init__(self) -> None:
        from datasketch import MinHashLSH  # imports scipy: only where signals are computed

        lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        self.bands, self.rows = lsh.b, lsh.r
        self.db = sqlite3.connect("")  # a private temporary file, deleted on close
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE docs (id INTEGER PRIMARY KEY, key TEXT NOT NULL, signature BLOB NOT NULL);"
            "CREATE TABLE bands (band INTEGER, hash INTEGER, doc INTEGER, question INTEGER);"
        )
        self.pending: list[tuple[int, str, str]] = []
        self.count = 0
        self.question = -1
        self.last_question: str | None = None

    def add(self, question: str, key: str, text: str) -> None:
        if question != self.last_question:
            self.question += 1
            self.last_question = question
        self.pending.append((self.question, key, text[:SIGNAL_CHARS]))
        if len(self.pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        from datasketch import MinHash

        if not self.pending:
            return
        texts = list(dict.fromkeys(text for _, _, text in self.pending))  # an exact repeat is hashed once
        computed = MinHash.bulk((shingles(text) for text in texts), num_perm=NUM_PERM)
        signature_of = dict(zip(texts, computed, strict=True))
        values = np.stack([signature_of[text].hashvalues for _, _, text in self.pending]).astype(np.uint32)
        width = self.bands * self.rows
        folded = (values[:, :width].astype(np.uint64) * _FOLD[:width]).reshape(len(values), self.bands, self.rows)
        keys = folded.sum(axis=2, dtype=np.uint64).view(np.int64).tolist()
        first = self.count
        docs = [(first + i, key, values[i].tobytes()) for i, (_, key, _) in enumerate(self.pending)]
        bands = [
            (band, value, first + i, question)
            for i, ((question, _, _), row) in enumerate(zip(self.pending, keys, strict=True))
            for band, value in enumerate(row)
        ]
        self.count += len(self.pending)
        self.db.executemany("INSERT INTO docs VALUES (?, ?, ?)", docs)
        self.db.executemany("INSERT INTO bands VALUES (?, ?, ?, ?)", bands)
        self.pending = []

    def _signature(self, doc: int) -> np.ndarray:
        (blob,) = self.db.execute("SELECT signature FROM docs WHERE id = ?", (doc,)).fetchone()
        return np.frombuffer(blob, dtype=np.uint32)

    def _similar(self, first: np.ndarray, doc: int) -> bool:
        return np.count_nonzero(first == self._signature(doc)) / NUM_PERM >= THRESHOLD

    def duplicate_docs(self) -> np.ndarray:
        """A flag per rationale, in the order added: True for a near-duplicate of an earlier one."""
        self._flush()
        duplicate = np.zeros(self.count, dtype=bool)
        self.db.execute("CREATE INDEX bucket ON bands (band, hash, doc)")
        shared = self.db.execute(
            "SELECT band, hash, doc, question FROM bands WHERE (band, hash) IN "
            "(SELECT band, hash FROM bands GROUP BY band, hash HAVING count(DISTINCT question) > 1) "
            "ORDER BY band, hash, doc"
        )
        bucket = None
        first: tuple[int, int, np.ndarray | None] | None = None  # (doc, question, signature) of the bucket's first
        other: tuple[int, int, np.ndarray | None] | None = None  # the first of another question than `first`
        for band, value, doc, question in shared:
            if (band, value) != bucket:
                bucket, first, other = (band, value), (doc, question, None), None
                continue
            assert first is not None
            if other is None and question != first[1]:
                other = (doc, question, None)
            if duplicate[doc]:
                continue
            earlier = first if question != first[1] else other
            if earlier is None or earlier[0] == doc:
                continue
            signature = earlier[2] if earlier[2] is not None else self._signature(earlier[0])
            if earlier is first:
                first = (first[0], first[1], signature)
            else:
                other = (earlier[0], earlier[1], signature)
            duplicate[doc] = self._similar(signature, doc)
        return duplicate

    def duplicates(self) -> Iterator[str]:
        """The keys of the near-duplicates of an earlier rationale."""
        flags = self.duplicate_docs()
        for doc, key in self.db.execute("SELECT id, key FROM docs ORDER BY id"):
            if flags[doc]:
                yield key

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> NearDuplicates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
