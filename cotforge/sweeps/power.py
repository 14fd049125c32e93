"""The power to name the best arm alone, before a sweep runs (the dry run) and after (the report).

A quick simulation of the procedure itself (statistics.verdict's model confidence set, range statistic) in its
normal approximation: each arm's accuracy is its true value plus an independent normal error whose variance is half
that of a paired difference (the difficulty arms share cancels from a difference), one arm `gap` above the others,
its error wider by the binomial variance at its higher accuracy. Where the sweep estimates the seed-level variance,
each study's differences are divided by their estimated standard error, which varies as sqrt(chi-square / df) with
the verdict's Satterthwaite degrees of freedom, one draw shared by every pair (the same estimate enters each), and
the critical values are the matching multivariate t's. The set eliminates the worst arm while the largest
studentised difference among those left exceeds the range statistic's critical value for that many arms; the best
arm is named alone when every step eliminates and it is the one left. benchmarks/sweep_selection.py checks it
against full bootstrap verdicts.
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
def _critical_values(arms: int, level: float, df: float | None) -> np.ndarray:
    """[j]: the level-quantile of the range statistic among j equal arms (max |Z_a - Z_b| / sqrt 2, Z standard
    normal, scaled by one sqrt(df / chi-square) per draw when the differences' variance is estimated with df degrees
    of freedom), j = 0..arms (0 and 1 unused)."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((DRAWS, arms))
    if df is not None:
        z *= np.sqrt(df / rng.chisquare(df, size=(DRAWS, 1)))
    values = np.zeros(arms + 1)
    for j in range(2, arms + 1):
        spread = z[:, :j].max(axis=1) - z[:, :j].min(axis=1)
        values[j] = float(np.quantile(spread / np.sqrt(2), level))
    return values


@cache
def _errors(arms: int) -> np.ndarray:
    """Common random numbers for every gap: monotone power, reproducible figures."""
    return np.random.default_rng(2).standard_normal((DRAWS, arms)) / np.sqrt(2)


@cache
def _estimated_se(df: float | None) -> np.ndarray:
    """Each draw's estimated standard error over the true one (common random numbers again); 1 when known."""
    if df is None:
        return np.ones((DRAWS,))
    return np.sqrt(np.random.default_rng(3).chisquare(df, size=DRAWS) / df)


def _spread_ratio(accuracy: float | None, gap: float, run_share: float) -> float:
    """How much more the better arm's accuracy varies than the others': the binomial variance at its accuracy, on the
    question-level share of the variance (a run's luck does not grow with accuracy)."""
    if accuracy is None:
        return 1.0
    p = min(max(accuracy, 0.001), 0.999)
    better = min(p + gap, 0.999)
    return float((run_share + (1 - run_share) * better * (1 - better) / (p * (1 - p))) ** 0.5)


def power_to_name_best(
    arms: int,
    gap: float,
    pair_se: float,
    accuracy: float | None = None,
    level: float = LEVEL,
    df: float | None = None,
    run_share: float = 0.0,
) -> float:
    """P(the set is the best arm alone) when one of `arms` arms is `gap` better than the others, which are equal with
    accuracy `accuracy` (its answers then vary more or less than theirs; None: as much) and `pair_se` apart by chance;
    `df`: the degrees of freedom of the estimated variance of a paired difference (None: known); `run_share`: the
    share of that variance that is the run-to-run term."""
    if arms < 2:
        return 1.0
    ratio = _spread_ratio(accuracy, gap, run_share)
    accuracies = _errors(arms).copy()
    accuracies[:, 0] = accuracies[:, 0] * ratio + gap / pair_se
    ranked = np.sort(accuracies, axis=1)[:, ::-1]  # the worst is eliminated first: the j left are the j highest
    rounded = None if df is None else round(df)
    critical = _critical_values(arms, level, rounded)
    # The comparisons that decide involve the best arm: their standard error is (1 + ratio^2) / 2 times as large.
    scale = ((1 + ratio**2) / 2) ** 0.5 * _estimated_se(rounded)
    named = accuracies.argmax(axis=1) == 0
    for j in range(2, arms + 1):
        named &= (ranked[:, 0] - ranked[:, j - 1]) / scale > critical[j]
    return float(named.mean())


def gap_for_power(
    arms: int,
    pair_se: float,
    accuracy: float | None = None,
    power: float = POWER,
    level: float = LEVEL,
    df: float | None = None,
    run_share: float = 0.0,
) -> float:
    """The gap at which the best arm is named alone with probability `power`."""
    low, high = 0.0, 40 * pair_se
    for _ in range(30):
        middle = (low + high) / 2
        reached = power_to_name_best(arms, middle, pair_se, accuracy, level, df, run_share) >= power
        low, high = (low, middle) if reached else (middle, high)
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


def power_sentence(
    arms: int,
    pair_se: float,
    accuracy: float | None,
    df: float | None = None,
    gaps: tuple[float, ...] = (0.05, 0.10),
    level: float = LEVEL,
    run_share: float = 0.0,
) -> str:
    """The power to name the best alone at stated gaps and the gap reaching 80%, as one sentence."""
    if arms < 2:
        return "one arm: nothing to compare"
    if pair_se <= 0:
        return "every arm answered every question alike: no difference to measure, so no power to state"
    eighty = gap_for_power(arms, pair_se, accuracy, POWER, level, df, run_share)
    at = ", ".join(
        f"{power_to_name_best(arms, g, pair_se, accuracy, level, df, run_share):.0%} at {g * 100:.0f} points"
        for g in gaps
    )
    return (
        f"power to name the best of {arms} arms alone when it is better than all the others (equal among "
        f"themselves): {at}; {POWER:.0%} power from a gap of {eighty * 100:.1f} "
        f"points (paired standard error {pair_se * 100:.1f} points"
        + (f", its variance estimated with {df:.0f} degrees of freedom" if df is not None else "")
        + "; a simulated normal approximation of the procedure)"
    )
