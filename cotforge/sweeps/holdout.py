"""The sweep's hold-out, drawn by groups of near-variant questions.

Data sets such as SVAMP are built from variants of one story (the numbers or the asked quantity changed). A held-out
question whose variant is in training is not unseen, so questions whose similarity reaches a threshold are joined
(transitively) into one group, and a group goes whole to one side. Similarity is the contamination check's
(cotforge.contamination.similarity_blocks, 0..1); comparing every pair is quadratic but runs in C++ a block of rows
at a time (about half a second for 700 questions, under a minute for 7,500).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cotforge.contamination import normalise_question, similarity_blocks


def near_variant_groups(questions: Sequence[str], threshold: float) -> list[list[int]]:
    """Indices of `questions` joined into groups: two questions at least `threshold` similar share a group."""
    texts = [normalise_question(q) for q in questions]
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    cutoff = round(threshold * 100)
    for start, block in similarity_blocks(texts, texts):
        for row, column in zip(*np.nonzero(block >= cutoff), strict=True):
            a, b = root(start + int(row)), root(int(column))
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(texts)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def highest_similarity(held_out: Sequence[str], training: Sequence[str]) -> float:
    """The highest similarity (0..1) of any held-out question to any training question."""
    if not held_out or not training:
        return 0.0
    train = [normalise_question(q) for q in training]
    return (
        max(int(block.max()) for _, block in similarity_blocks([normalise_question(q) for q in held_out], train)) / 100
    )


@dataclass(frozen=True)
class Split:
    held_out: list[str]  # problem ids
    training: list[str]
    groups: int  # groups of near-variants found
    largest_group: int


def split_by_groups(
    ids: Sequence[str], questions: Sequence[str], fraction: float, limit: int | None, threshold: float
) -> Split:
    """Hold out about `fraction` of the problems (at most `limit`), whole groups of near-variants at a time.

    Groups are taken in an order fixed by their content alone (a hash of their smallest id): the same hold-out on every
    machine and every re-run. A group that would overshoot the target is passed over for smaller ones, so the held-out
    count lands on the target unless no group fits."""
    groups = [sorted(ids[i] for i in group) for group in near_variant_groups(questions, threshold)]
    groups.sort(key=lambda g: hashlib.sha256(f"holdout:{g[0]}".encode()).hexdigest())
    target = max(1, round(fraction * len(ids)))
    if limit is not None:
        target = min(target, limit)
    held_out: list[str] = []
    training: list[str] = []
    for group in groups:
        (held_out if len(held_out) + len(group) <= target else training).extend(group)
    return Split(sorted(held_out), sorted(training), len(groups), max((len(g) for g in groups), default=0))
