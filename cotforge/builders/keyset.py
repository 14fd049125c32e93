"""Answer keys held compactly: 16-byte digests in one sorted array, not sets of 32-character strings.

A store key is the first 32 hex digits of a SHA-256 (cotforge.builders.plan), so its digest is those 16 bytes: keys
on disk stay what they were, and a set of a million keys takes 24 MB (digests and their prefixes) where a set of
strings took about 120.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

import numpy as np

T = TypeVar("T")
CHUNK = 100_000  # keys converted at a time
_HEX_KEY = 32


def key_digest(key: str) -> bytes:
    """The 16 bytes of a plan key; a key of another form (an imported answer's) gets a digest of its text, which no
    plan key has."""
    if len(key) == _HEX_KEY:
        try:
            return bytes.fromhex(key)
        except ValueError:
            pass
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def chunked(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def key_digests(keys: list[str]) -> np.ndarray:
    return np.array([key_digest(key) for key in keys], "S16")


def _prefixes(digests: np.ndarray) -> np.ndarray:
    """Each digest's first 8 bytes as a big-endian number: ordered as the digests are, and searched about 4x faster
    than 16-byte strings."""
    return np.ascontiguousarray(digests, "S16").view(">u8")[::2].astype(np.uint64)


class KeySet:
    """A set of answer keys, sorted digests (and their 8-byte prefixes, to search); built from keys read in chunks,
    never from a set of them."""

    def __init__(self, digests: np.ndarray) -> None:
        self._set(np.unique(digests))

    def _set(self, digests: np.ndarray) -> None:
        self.digests = digests
        self.prefixes = _prefixes(digests)

    @classmethod
    def of(cls, keys: Iterable[str]) -> KeySet:
        parts = [np.unique(key_digests(chunk)) for chunk in chunked(keys)]
        return cls(np.concatenate(parts) if parts else np.empty(0, "S16"))

    @classmethod
    def of_unique(cls, digests: np.ndarray) -> KeySet:
        """A set of digests known to be unique (a table's primary keys): sorted, not deduplicated again."""
        found = cls.__new__(cls)
        found._set(np.sort(digests))
        return found

    @classmethod
    def of_sorted(cls, digests: np.ndarray) -> KeySet | None:
        """A KeySet's own digests kept on disk, sorted and unique, without sorting them again; None when they are
        not (the caller plans again)."""
        if digests.dtype != np.dtype("S16") or (len(digests) > 1 and not (digests[1:] > digests[:-1]).all()):
            return None
        found = cls.__new__(cls)
        found._set(digests)
        return found

    def __len__(self) -> int:
        return len(self.digests)

    def has(self, digests: np.ndarray) -> np.ndarray:
        """For each digest (key_digests), whether it is in the set."""
        if not len(self.digests):
            return np.zeros(len(digests), bool)
        last = len(self.digests) - 1
        prefixes = _prefixes(digests)
        at = np.minimum(np.searchsorted(self.prefixes, prefixes), last)
        found = self.digests[at] == digests
        # `at` is the first digest with that prefix: where several share it, look again by the whole digest.
        shared = ~found & (self.prefixes[at] == prefixes)
        if shared.any():
            again = np.minimum(np.searchsorted(self.digests, digests[shared]), last)
            found[shared] = self.digests[again] == digests[shared]
        return found

    def contains(self, keys: list[str]) -> np.ndarray:
        """For each key, whether it is in the set."""
        return self.has(key_digests(keys))

    def __contains__(self, key: str) -> bool:
        return bool(self.has(np.array([key_digest(key)], "S16"))[0])

    def within(self, other: KeySet) -> bool:
        """Whether every key of this set is in `other`."""
        return bool(other.has(self.digests).all())
