"""The power to name the best arm alone, before a sweep runs (the dry run) and after (the report).

A quick simulation of the procedure itself (statistics.verdict's model confidence set, range statistic) in its
normal approximation: each arm's accuracy is its true value plus an independent normal error whose variance is half
that of a paired difference (the difficulty arms share cancels from a difference), one arm `gap` above the others;
the set eliminates the worst arm while the largest standardised difference among those left exceeds the range
statistic's critical value for that many arms. The best arm is named alone when every step eliminates and it is the
one left. Since power depends only on gap / pair_se and the number of arms, the gap reaching a power is a multiple of
pair_se. benchmarks/sweep_selection.py checks it against full bootstrap verdicts.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from cotforge.sweeps.statistics import LEVEL

POWER = 0.8
DRAWS = 20_000
# Planning a sweep: the correlation of two arms' answers to the same question (how much of an answer's variance the
# question fixes, shared by the arms). Sweeps measure it (the report's seed_correlation); 0.3 is the low, cautious end
# of what simulated and measured sweeps showed (0.1 to 0.5): lower means less of the noise cancels from a difference.
PLANNING_QUESTION_CORRELATION = 0.3


@cache
def _critical_values(arms: int, level: float) -> np.ndarray:
    """[j]: the level-quantile of the range statistic among j equal arms (max |Z_a - Z_b| / sqrt 2, Z standard
    normal), j = 0..arms (0 and 1 unused)."""
    z = np.random.default_rng(1).standard_normal((DRAWS, arms))
    values = np.zeros(arms + 1)
    for j in range(2, arms + 1):
        spread = z[:, :j].max(axis=1) - z[:, :j].min(axis=1)
        values[j] = float(np.quantile(spread / np.sqrt(2), level))
    return values


@cache
def _errors(arms: int) -> np.ndarray:
    """Common random numbers for every gap: monotone power, reproducible figures."""
    return np.random.default_rng(2).standard_normal((DRAWS, arms)) / np.sqrt(2)


def power_to_name_best(arms: int, gap_in_se: float, level: float = LEVEL) -> float:
    """P(the set is the best arm alone) when one of `arms` arms is `gap_in_se` paired standard errors better than
    the others, which are equal."""
    if arms < 2:
        return 1.0
    accuracies = _errors(arms).copy()
    accuracies[:, 0] += gap_in_se
    ranked = np.sort(accuracies, axis=1)[:, ::-1]  # the worst is eliminated first: the j left are the j highest
    critical = _critical_values(arms, level)
    named = accuracies.argmax(axis=1) == 0
    for j in range(2, arms + 1):
        named &= ranked[:, 0] - ranked[:, j - 1] > critical[j]
    return float(named.mean())


@cache
def gap_for_power(arms: int, power: float = POWER, level: float = LEVEL) -> float:
    """The gap, in paired standard errors, at which the best arm is named alone with probability `power`."""
    low, high = 0.0, 20.0
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if power_to_name_best(arms, middle, level) < power else (low, middle)
    return high


def planned_pair_se(
    questions: int,
    seeds: int,
    prior_accuracy: float,
    run_sd: float = 0.0,
    question_correlation: float = PLANNING_QUESTION_CORRELATION,
) -> float:
    """The standard error of a paired difference between two arms a sweep can expect: per question, each arm's
    answer varies by p(1 - p), of which the share `question_correlation` is the question's and cancels; the rest is
    averaged over seeds and questions; each run's own luck (run_sd) over seeds."""
    p = prior_accuracy
    per_arm = p * (1 - p) * (1 - question_correlation) / (questions * seeds) + run_sd**2 / seeds
    return float((2 * per_arm) ** 0.5)


def power_sentence(arms: int, pair_se: float, gaps: tuple[float, ...] = (0.05, 0.10), level: float = LEVEL) -> str:
    """The power to name the best alone at stated gaps and the gap reaching 80%, as one sentence."""
    if arms < 2 or pair_se <= 0:
        return "one arm: nothing to compare"
    at = ", ".join(f"{power_to_name_best(arms, g / pair_se, level):.0%} at {g * 100:.0f} points" for g in gaps)
    return (
        f"power to name the best of {arms} arms alone when it is better than all the others (equal among "
        f"themselves): {at}; {POWER:.0%} power from a gap of {gap_for_power(arms, POWER, level) * pair_se * 100:.1f} "
        f"points (paired standard error {pair_se * 100:.1f} points; simulated normal approximation of the procedure)"
    )
