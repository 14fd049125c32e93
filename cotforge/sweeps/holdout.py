"""The sweep's hold-out, drawn by families and groups of near-variant questions.

Data sets such as SVAMP are built from variants of one story (the numbers or the asked quantity changed). A held-out
question whose variant is in training is not unseen. Two questions are near-variants when at least the threshold
similar; a *family* is the questions linked through near-variants (connected components), a *group* a part of a family
in which every pair is a near-variant (complete linkage, so a group cannot chain: a chain of 301 questions each 0.96
similar to the next and 0.40 end to end is one family, in groups of at most 8). Families and groups hand the statistics
their clusters: held_out.json's question_groups numbers each held-out question by the family it was held out with,
or by its group where its family was split.

A family that fits the hold-out goes whole to one side, as SVAMP's stories do (the largest of 17 questions): no
near-variant of its questions is left in training. A family too big for what is left of the hold-out (such a family
was never held out while families were the only unit) is held out a group at a time instead, the groups next to each
other where they can be; a training question at least the threshold similar to a held-out one in another group
is then dropped from training (Split.near_training), so the guarantee holds either way: no training question is a
near-variant of a held-out one. A group larger than the whole hold-out is never held out and is counted.

Similarity is the contamination check's (cotforge.contamination.similarity_blocks, 0..1, compared with the threshold
exactly). Every pair is compared once, in C++, a block of rows at a time (BENCHMARKS.md); the pairs that reach the
threshold make a sparse graph, and each family of three or more is clustered apart (scipy's complete linkage,
quadratic in its size). Families and groups depend on the questions alone, not on their order: they are clustered in
the order of their normalised texts, and the hold-out takes them in an order fixed by their ids.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cotforge.contamination import normalise_question, similarity_blocks

_ROWS = 128  # rows compared at once with every later question: small, so that few pairs are compared twice


@dataclass(frozen=True)
class NearVariants:
    """Near-variants of each other among some questions, by index: in one family when linked through pairs of
    near-variants (connected components), in one group when every pair is (complete linkage within a family)."""

    family: np.ndarray  # one number per question
    group: np.ndarray  # one number per question
    pairs: np.ndarray  # (pairs, 2): the indices of every pair at least the threshold similar, each pair once


def members(labels: np.ndarray) -> list[list[int]]:
    """The indices that share each number of `labels`, by number."""
    order = np.argsort(labels, kind="stable")
    return [part.tolist() for part in np.split(order, np.cumsum(np.bincount(labels))[:-1]) if len(part)]


def numbered(labels: Sequence[int] | np.ndarray) -> list[int]:
    """`labels` renumbered 0, 1, 2 ... in the order they first appear: equal labels stay equal."""
    first_seen: dict[int, int] = {}
    return [first_seen.setdefault(int(label), len(first_seen)) for label in labels]


def _similar_pairs(texts: Sequence[str], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First index, second index (the greater) and similarity of every pair of `texts` at least `threshold` similar."""
    firsts, seconds, values = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for start in range(0, len(texts), _ROWS):
        # Against the later texts only: each pair is compared once.
        for offset, block in similarity_blocks(texts[start : start + _ROWS], texts[start:]):
            row, column = np.nonzero(block >= threshold)
            first, second = row + start + offset, column + start
            above = first < second
            firsts.append(first[above])
            seconds.append(second[above])
            values.append(block[row[above], column[above]])
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(values)


def near_variants(questions: Sequence[str], threshold: float) -> NearVariants:
    """Families and groups of `questions` at `threshold` (above 0). Within a family, the most similar are grouped
    first, and a group grows as long as every pair in it stays at least `threshold` similar."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial.distance import squareform

    size = len(questions)
    normalised = [normalise_question(q) for q in questions]
    order = np.array(sorted(range(size), key=lambda i: (normalised[i], questions[i])), dtype=np.int64)
    first, second, similarity = _similar_pairs([normalised[i] for i in order], threshold)
    graph = coo_matrix((similarity, (first, second)), shape=(size, size)).tocsr()
    graph = graph + graph.T
    family = connected_components(graph, directed=False)[1] if size else np.zeros(0, np.int64)
    group = np.zeros(size, np.int64)
    groups = 0
    for inside in members(family):
        if len(inside) < 3:  # one question, or one pair at least the threshold similar
            group[inside], groups = groups, groups + 1
            continue
        # Complete linkage on 1 - similarity within the threshold and 2 beyond it: cut at 1, every pair of a group is
        # within it.
        near = graph[inside][:, inside].toarray()
        distance = np.where(near > 0, 1 - near, 2.0)
        np.fill_diagonal(distance, 0)
        labels = fcluster(linkage(squareform(distance, checks=False), method="complete"), 1.0, criterion="distance")
        group[inside] = groups + labels - 1
        groups += int(labels.max())
    # Back to the questions' own order.
    back = np.empty(size, np.int64)
    back[order] = np.arange(size)
    return NearVariants(family[back], group[back], np.stack([order[first], order[second]], axis=1))


def highest_similarity(held_out: Sequence[str], training: Sequence[str]) -> float:
    """The highest similarity (0..1) of any held-out question to any training question."""
    if not held_out or not training:
        return 0.0
    train = [normalise_question(q) for q in training]
    return max(float(block.max()) for _, block in similarity_blocks([normalise_question(q) for q in held_out], train))


@dataclass(frozen=True)
class Split:
    held_out: list[str]  # problem ids, sorted: the order the held-out questions are asked in
    held_out_groups: list[int]  # one per held-out question, in that order: equal numbers, held out together
    training: list[str]
    near_training: list[str]  # left out of training: at least the threshold similar to a held-out question
    groups: int  # families of near-variants found
    largest_group: int  # the largest family
    families_split: int  # families too big for what was left of the hold-out, held out a group at a time
    groups_too_big: int  # groups larger than the whole hold-out: never held out
    questions_too_big: int  # the questions of those groups


def _content_order(ids: Sequence[str], parts: list[list[int]]) -> list[list[int]]:
    """`parts` (sorted lists of indices into `ids`) in an order fixed by their content: a hash of their first id."""
    return sorted(parts, key=lambda part: hashlib.sha256(f"holdout:{ids[part[0]]}".encode()).hexdigest())


def split_by_groups(
    ids: Sequence[str], questions: Sequence[str], fraction: float, limit: int | None, threshold: float
) -> Split:
    """Hold out about `fraction` of the problems (at most `limit`), whole families of near-variants at a time.

    Families are taken in an order fixed by their content alone (a hash of their smallest id): the same hold-out on
    every machine and every re-run. A family that would overshoot the target is passed over for smaller ones; when
    none is left that fits, the room left is filled with groups of the families passed over (every pair in a group at
    least the threshold similar), next to each other where they can be, so that few training questions are near-variants
    of held-out ones; those are left out of training (near_training). A group larger than the target is counted."""
    by_id = sorted(range(len(ids)), key=lambda i: ids[i])  # duplicate texts are told apart by their ids, in order
    ids, questions = [ids[i] for i in by_id], [questions[i] for i in by_id]
    found = near_variants(questions, threshold)
    target = max(1, round(fraction * len(ids)))
    if limit is not None:
        target = min(target, limit)
    unit = np.full(len(ids), -1, dtype=np.int64)  # what each held-out question was held out with; -1: not held out
    passed_over = []
    taken = 0
    for number, family in enumerate(_content_order(ids, members(found.family))):
        if taken + len(family) <= target:
            unit[family] = number
            taken += len(family)
        else:
            passed_over.append(family)
    groups = _content_order(ids, [g for g in members(found.group) if unit[g[0]] < 0])
    _fill_with_groups(groups, found, unit, target)
    held = unit >= 0
    a, b = found.pairs[:, 0], found.pairs[:, 1]
    near = np.zeros(len(ids), dtype=bool)
    near[b[held[a] & ~held[b]]] = True
    near[a[held[b] & ~held[a]]] = True
    too_big = [g for g in groups if len(g) > target]
    return Split(
        held_out=[ids[i] for i in np.flatnonzero(held)],
        held_out_groups=numbered(unit[held]),
        training=[ids[i] for i in np.flatnonzero(~held & ~near)],
        near_training=[ids[i] for i in np.flatnonzero(near)],
        groups=len(members(found.family)),
        largest_group=max((len(f) for f in members(found.family)), default=0),
        families_split=sum(bool(held[f].any()) for f in passed_over),
        groups_too_big=len(too_big),
        questions_too_big=sum(len(g) for g in too_big),
    )


def _fill_with_groups(groups: list[list[int]], found: NearVariants, unit: np.ndarray, target: int) -> None:
    """Hold out `groups` (in their order) while they fit, each next taken from beside those held out when one fits."""
    rank = {int(found.group[g[0]]): position for position, g in enumerate(groups)}
    beside: dict[int, set[int]] = {}
    for a, b in found.group[found.pairs].tolist():
        if a != b and a in rank and b in rank:
            beside.setdefault(rank[a], set()).add(rank[b])
            beside.setdefault(rank[b], set()).add(rank[a])
    room = target - np.count_nonzero(unit >= 0)
    frontier: list[int] = []  # groups beside the held-out ones, by rank
    for start in range(len(groups)):
        heapq.heappush(frontier, start)
        while frontier:
            position = heapq.heappop(frontier)
            group = groups[position]
            if unit[group[0]] >= 0 or len(group) > room:
                continue  # the room only shrinks: a group that does not fit now never will
            unit[group] = len(unit) + position  # apart from the families' numbers
            room -= len(group)
            for other in beside.get(position, ()):
                heapq.heappush(frontier, other)
