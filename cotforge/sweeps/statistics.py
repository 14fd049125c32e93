"""How sure an accuracy is: bootstrap intervals over test questions, and paired tests between two students' answers
to the same questions (a paired bootstrap of the difference, and McNemar's exact test on the discordant pairs).

Plain Python on purpose: a few hundred questions and a thousand resamples take milliseconds, and every number is
reproducible from the seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 2000


def _resampled_means(values: Sequence[float], resamples: int, seed: int) -> list[float]:
    n = len(values)
    rng = random.Random(seed)
    return sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))


def _percentile_interval(ordered: list[float], level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    last = len(ordered) - 1
    return ordered[int(tail * last)], ordered[math.ceil((1 - tail) * last)]


def bootstrap_interval(
    correct: Sequence[float], level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-question scores (1/0, or a mean over seeds)."""
    if not correct:
        return (0.0, 0.0)
    return _percentile_interval(_resampled_means(correct, resamples, seed), level)


@dataclass(frozen=True)
class PairedComparison:
    """B against A on the same questions: the difference in accuracy (B - A), its interval, and two p-values."""

    difference: float
    interval: tuple[float, float]
    p_bootstrap: float  # two-sided: how often a resampled difference falls on the other side of zero
    p_mcnemar: float  # exact binomial test on the questions only one of the two got right (scores rounded)
    only_a: int  # questions A got right and B did not
    only_b: int


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: under no difference, each discordant question falls either way with p=1/2."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare_paired(
    a: Sequence[float], b: Sequence[float], level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> PairedComparison:
    """Per-question scores of two models on the same questions, in the same order."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need the same questions ({len(a)} vs {len(b)})")
    n = len(a)
    deltas = [y - x for x, y in zip(a, b, strict=True)]
    observed = sum(deltas) / n if n else 0.0
    resampled = _resampled_means(deltas, resamples, seed) if n else [0.0]
    interval = _percentile_interval(resampled, level)
    # Two-sided bootstrap p-value: twice the share of resampled differences on the far side of zero (capped at 1).
    # A p-value never reads 0: with R resamples it is at least 1/R.
    if observed > 0:
        p_boot = min(1.0, max(1, 2 * sum(d <= 0 for d in resampled)) / len(resampled))
    elif observed < 0:
        p_boot = min(1.0, max(1, 2 * sum(d >= 0 for d in resampled)) / len(resampled))
    else:
        p_boot = 1.0
    only_a = sum(round(x) == 1 and round(y) == 0 for x, y in zip(a, b, strict=True))
    only_b = sum(round(x) == 0 and round(y) == 1 for x, y in zip(a, b, strict=True))
    return PairedComparison(observed, interval, p_boot, mcnemar_exact(only_a, only_b), only_a, only_b)
