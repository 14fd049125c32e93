"""How sure a sweep's answer is.

- Intervals: a two-level bootstrap. Each resample draws the questions with replacement (the same draw for every arm,
  so arms stay paired) and, within each arm, its seeds with replacement; an arm's accuracy is its mean over both. With
  one seed it is the plain bootstrap over questions; when seeds disagree, the interval widens as it should.
- Which arm is best: multiple comparisons with the best (Hsu's MCB). For each arm, a simultaneous interval for its
  accuracy minus the best of the others; the arms whose upper bound is not below zero could be the best at the stated
  level: a set, never a winner picked by its observed maximum (which is biased upward, more so the more arms there
  are). The critical value holds for every ordered pair at once (the 95th percentile of the bootstrap's largest
  standardised deviation over all pairs), so an arm left out is worse than another arm at the 5% familywise level,
  also when arms tie; Hsu's one-against-the-rest value would leave tied arms out in about a quarter of studies of
  8 equal arms (benchmarks/sweep_selection.py). Beside it, the bootstrap probability that each arm is the best.
- Paired tests against the observed best: a sign-flip permutation test on the per-question mean correctness over
  seeds (a question half right over two seeds counts 0.5, never rounded), Holm-adjusted over the comparisons.
- Power: the smallest difference the study could detect at 80% power with its multiplicity correction.

numpy on purpose: thousands of resamples of every arm at once take milliseconds, and every number is reproducible
from the seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
POWER = 0.8
# Planning a sweep: how much of a question's correctness is fixed by the question (its difficulty) rather than by the
# seed, as an intraclass correlation. 0.5 is a middle guess; a sweep's report measures it (seed_correlation).
PLANNING_SEED_CORRELATION = 0.5


def _matrix(scores: Sequence[Sequence[float]]) -> np.ndarray:
    """seeds x questions, as floats."""
    matrix = np.asarray(scores, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError("scores: give one row of per-question scores per seed")
    return matrix


def resampled_accuracies(
    arms: Mapping[str, Sequence[Sequence[float]]], resamples: int = RESAMPLES, seed: int = 0, seeds_too: bool = True
) -> np.ndarray:
    """resamples x arms accuracies from the two-level bootstrap (`seeds_too=False`: questions only, seeds averaged).
    Every arm must have answered the same questions in the same order."""
    matrices = [_matrix(m) for m in arms.values()]
    n = {m.shape[1] for m in matrices}
    if len(n) != 1:
        raise ValueError(f"paired scores need the same questions in every arm ({sorted(n)})")
    rng = np.random.default_rng(seed)
    questions = n.pop()
    # How often each question is drawn in each resample: accuracies are then one matrix product per arm.
    counts = rng.multinomial(questions, np.full(questions, 1 / questions), size=resamples) / questions
    columns = []
    for matrix in matrices:
        per_seed = counts @ matrix.T  # resamples x seeds
        if seeds_too and len(matrix) > 1:
            drawn = rng.integers(0, len(matrix), size=(resamples, len(matrix)))
            columns.append(np.take_along_axis(per_seed, drawn, axis=1).mean(axis=1))
        else:
            columns.append(per_seed.mean(axis=1))
    return np.stack(columns, axis=1)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_interval(
    scores: Sequence[Sequence[float]], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Two-level bootstrap interval of one arm's accuracy (seeds x questions of 1/0)."""
    return percentile_interval(resampled_accuracies({"arm": scores}, resamples, seed)[:, 0], level)


@dataclass(frozen=True)
class BestComparison:
    """One arm among several: where it stands against the best of the others."""

    probability_best: float  # share of resamples where it has the highest accuracy (ties shared)
    mcb_low: float  # simultaneous interval of (this arm - the best other arm), Hsu's constrained form
    mcb_high: float
    could_be_best: bool  # the interval reaches zero: no other arm is better at the stated level


def _standard_errors(replicates: np.ndarray) -> np.ndarray:
    """arms x arms standard deviations of the resampled differences."""
    differences = replicates[:, None, :] - replicates[:, :, None]  # [b, i, j] = rep_j - rep_i
    return differences.std(axis=0)


def compare_with_best(
    observed: Sequence[float], replicates: np.ndarray, level: float = LEVEL
) -> tuple[list[BestComparison], float]:
    """Multiple comparisons with the best over all arms, and the critical value used (for the power statement)."""
    obs = np.asarray(observed, dtype=float)
    k = len(obs)
    if k < 2:
        raise ValueError("comparing arms needs at least two")
    ses = _standard_errors(replicates)
    with np.errstate(divide="ignore", invalid="ignore"):
        # [b, i, j]: how far (rep_j - rep_i) strays from (obs_j - obs_i), in standard errors; 0 where the two arms
        # never differ (identical answers)
        deviation = ((replicates[:, None, :] - replicates[:, :, None]) - (obs[None, :] - obs[:, None])) / ses
    deviation = np.nan_to_num(deviation, nan=0.0, posinf=0.0, neginf=0.0)
    top = replicates.max(axis=1, keepdims=True)
    winners = replicates == top
    share = (winners / winners.sum(axis=1, keepdims=True)).mean(axis=0)
    # One critical value for every ordered pair at once (a bootstrap max-t): Hsu's own value, for one arm against the
    # others, keeps the true best in the set but lets tied arms be called "not best" far more often than 5%.
    pairs = ~np.eye(k, dtype=bool)
    critical = float(np.quantile(deviation[:, pairs].max(axis=1), level))
    results = []
    for i in range(k):
        others = [j for j in range(k) if j != i]
        gaps = obs[i] - obs[others]
        upper = float(np.min(gaps + critical * ses[i, others]))
        lower = float(np.min(gaps - critical * ses[i, others]))
        results.append(
            BestComparison(
                probability_best=float(share[i]),
                mcb_low=min(0.0, lower),
                mcb_high=max(0.0, upper),
                could_be_best=upper >= -1e-12,
            )
        )
    return results, critical


def sign_flip_p(a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES * 5, seed: int = 0) -> float:
    """Two-sided paired permutation test of mean(b - a) = 0 on per-question scores (means over seeds, not rounded):
    under no difference each question's difference is as likely with either sign."""
    differences = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    observed = abs(differences.mean())
    if not differences.any():
        return 1.0
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(resamples, len(differences)))
    flipped = np.abs(signs @ differences) / len(differences)
    return float((1 + np.sum(flipped >= observed - 1e-12)) / (1 + resamples))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the adjusted p-values, in the given order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def seed_correlation(arms: Mapping[str, Sequence[Sequence[float]]]) -> float | None:
    """How much of per-question correctness the question fixes, over the arms with several seeds: the intraclass
    correlation of one-way ANOVA (questions as groups, seeds as repeats), pooled; None without repeats."""
    within = between = 0.0
    count = 0
    for scores in arms.values():
        matrix = _matrix(scores)
        seeds, n = matrix.shape
        if seeds < 2:
            continue
        means = matrix.mean(axis=0)
        within += float(((matrix - means) ** 2).sum() / (n * (seeds - 1)))
        between += float(means.var(ddof=1) - ((matrix - means) ** 2).sum() / (n * (seeds - 1)) / seeds)
        count += 1
    if not count or within + between <= 0:
        return None
    return max(0.0, min(1.0, between / (between + within)))


def minimum_detectable_effect(standard_error: float, critical: float, power: float = POWER) -> float:
    """The smallest true difference found with probability `power` by a one-sided test at critical value `critical`
    (normal approximation)."""
    return (critical + NormalDist().inv_cdf(power)) * standard_error


def planned_mde(
    questions: int,
    arms: int,
    seeds: int,
    prior_accuracy: float,
    level: float = LEVEL,
    power: float = POWER,
    seed_correlation: float = PLANNING_SEED_CORRELATION,
) -> float:
    """The MDE a sweep can expect before it runs. Assumes two arms answer a question independently given its
    difficulty (arms that agree more detect smaller differences), a share `seed_correlation` of each answer's variance
    fixed by the question, and a Bonferroni critical value over every ordered pair of arms (a little above the
    bootstrap's, which knows how the pairs correlate)."""
    p = prior_accuracy
    per_question = p * (1 - p) * (seed_correlation + (1 - seed_correlation) / seeds)
    standard_error = (2 * per_question / questions) ** 0.5
    critical = NormalDist().inv_cdf(1 - (1 - level) / max(1, arms * (arms - 1)))
    return minimum_detectable_effect(standard_error, critical, power)


def typical_standard_error(replicates: np.ndarray) -> float:
    """The median standard error of a paired difference between two arms."""
    ses = _standard_errors(replicates)
    k = ses.shape[0]
    return float(np.median(ses[~np.eye(k, dtype=bool)]))
