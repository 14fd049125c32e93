"""How sure a sweep's answer is: `verdict` names the arms that could be the best, and the rest are worse.

Each source of variance is counted once:
- Questions: a bootstrap over held-out *groups* (clusters of near-variant questions; each question alone when there
  are none) on each arm's per-question mean over its seeds. Every resample draws the same groups for every arm, so
  arms stay paired: the difficulty two arms share cancels from their difference.
- Runs: a training run as a whole may be luckier than another (a run effect). The question bootstrap cannot see it
  (it shifts every question of a run alike), so it enters as one term pooled across arms: the between-seed variance of
  an arm's accuracy beyond what the question-level noise of its seeds explains (two-way ANOVA of seeds x questions),
  estimated from the arms with two seeds or more, with sum(seeds - 1) degrees of freedom. Seeds are never redrawn
  inside an arm (that counts their noise twice and made a second seed lower the power). With one seed nothing
  measures the run effect: "worse" is then about the trained models, not the arms, unless `run_sd` (from an earlier
  sweep) supplies it.
- Every paired difference is studentised (a bootstrap-t): over its own standard error, observed and in each
  resample. Its variance is the question part, less the seeds' question-level noise it already holds, plus the
  seed-level variance (run effect and question noise together: the between-seed variance as measured, never floored,
  so that no run spread is added where the seeds show none). Each resample redraws that estimate from its sampling
  distribution (a scaled chi-square with the seeds' degrees of freedom) and adds each arm's run effect over its
  seeds: the statistic is a t whose degrees of freedom (Satterthwaite's, stated) the data give, and its level holds
  whatever the run spread (a plug-in floored at zero did not: up to 11% of null studies under a 2-point spread).

Which arm is best: the model confidence set of Hansen, Lunde and Nason (2011, Econometrica 79(2)) with the range
statistic T_R: while the largest standardised paired difference among the arms left rejects "all equal" at the
stated level, the arm behind it is eliminated; the arms left could be the best. Each arm's MCS p-value is the largest
test p-value up to its elimination, selection-aware by construction (arch.bootstrap.MCS, method "R", computes the
same from the same resamples with a fixed scale; tests/test_sweep_statistics.py checks it).

numpy on purpose: thousands of resamples of every arm at once take milliseconds, and every number is reproducible
from the seed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# The verdict's bootstrap draw, declared once: every round of an adaptive sweep and the final verdict read their
# data with the same count and seed, so the two differ only by the data, not by Monte Carlo noise.
RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
METHOD = "model confidence set (Hansen, Lunde and Nason 2011), range statistic T_R"


def _matrix(name: str, scores: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """seeds x questions, as floats."""
    matrix = np.asarray(scores, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"scores[{name!r}]: give one row of per-question scores per seed (seeds x questions)")
    if np.isnan(matrix).any() or matrix.min() < 0 or matrix.max() > 1:
        raise ValueError(f"scores[{name!r}]: per-question scores are shares between 0 and 1")
    return matrix


def bootstrap_interval(
    scores: Sequence[Sequence[float]], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap interval over questions of one arm's accuracy (seeds x questions of 1/0, seeds averaged)."""
    means = _matrix("arm", scores).mean(axis=0)
    counts = np.random.default_rng(seed).multinomial(len(means), np.full(len(means), 1 / len(means)), size=resamples)
    return _percentiles(counts @ means / len(means), level)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class RunSpread:
    """The run-to-run SD of an arm's accuracy beyond question-level noise, and where it comes from."""

    sd: float | None  # None: not measurable (every arm has one seed) and not given
    source: str  # "pooled" (from the arms' seeds), "given" (run_sd) or "none"
    degrees_of_freedom: int | None = None  # of the pooled estimate, sum(seeds - 1); None when given (known) or none
    between_seed_variance: float | None = None  # pooled variance of a seed's accuracy: run effect and question noise
    question_noise: float | None = None  # its question-level part (residual mean square / questions), well measured


def run_spread(matrices: Sequence[np.ndarray]) -> RunSpread:
    """The run-to-run SD pooled over the arms with at least two seeds: per arm, the variance of its seeds' accuracies
    minus the residual mean square of seeds x questions over the number of questions (what the question-level noise
    of a seed alone would give), pooled with weights seeds - 1, floored at zero."""
    between = noise = 0.0
    df = 0
    for matrix in matrices:
        seeds, n = matrix.shape
        if seeds < 2:
            continue
        residual = matrix - matrix.mean(axis=0) - matrix.mean(axis=1, keepdims=True) + matrix.mean()
        # (seeds - 1) times the residual mean square over the questions: its weight in the pool, as the between's
        noise += float((residual**2).sum()) / max(1, n - 1) / n
        between += (seeds - 1) * float(matrix.mean(axis=1).var(ddof=1))
        df += seeds - 1
    if not df:
        return RunSpread(None, "none")
    return RunSpread(max(0.0, (between - noise) / df) ** 0.5, "pooled", df, between / df, noise / df)


def run_share(run_sd: float | None, seeds: float, pair_se: float) -> float:
    """The share of a paired difference's variance (standard error `pair_se`, two arms of `seeds` seeds) that is the
    run-to-run term: power.py does not widen it by the better arm's binomial variance, as a run's luck does not grow
    with accuracy."""
    if not run_sd or pair_se <= 0:
        return 0.0
    return min(1.0, 2 * run_sd**2 / seeds / pair_se**2)


@dataclass(frozen=True)
class ArmEstimate:
    name: str
    seeds: int
    accuracy: float  # mean over questions of the per-question mean over seeds
    interval: tuple[float, float]  # bootstrap interval at the verdict's level (question groups and run spread)
    mcs_p: float  # MCS p-value: the arm could be the best at level L when mcs_p > 1 - L


@dataclass(frozen=True)
class Verdict:
    """Which arms could be the best, which are worse, and what the answer rests on."""

    arms: tuple[ArmEstimate, ...]
    could_be_best: tuple[str, ...]  # the model confidence set, best observed first
    worse: tuple[str, ...]  # in the order they were eliminated
    level: float
    method: str
    questions: int
    groups: int  # units the bootstrap resampled: question groups, or questions
    run: RunSpread
    t_degrees_of_freedom: float | None  # of a studentised paired difference when its seed-level part was estimated
    pair_se: float  # median standard error of a paired difference between two arms: the power statement's input

    @property
    def run_share(self) -> float:
        """The share of a typical paired difference's variance that is the run-to-run term."""
        return run_share(self.run.sd, float(np.median([a.seeds for a in self.arms])), self.pair_se)

    @property
    def run_sentence(self) -> str:
        """How the run-to-run variance entered, as the report prints it."""
        if self.run.source == "given":
            return f"run-to-run SD {self.run.sd:.1%} given (--run-sd), taken as known"
        if self.run.source == "pooled":
            return (
                f"run-to-run SD {self.run.sd:.1%} pooled across arms ({self.run.degrees_of_freedom} degrees of "
                "freedom"
                + (
                    f"; differences studentised, a t with {self.t_degrees_of_freedom:.0f}"
                    if self.t_degrees_of_freedom
                    else ""
                )
                + ")"
            )
        return (
            "one seed per arm: no run-to-run variance could be measured, so 'worse' is about these trained models, "
            "not about the arms (another seed may rank them otherwise); give --run-sd from an earlier sweep or a "
            "second seed"
        )


def _group_codes(groups: Sequence[Hashable] | None, questions: int) -> np.ndarray:
    if groups is None:
        return np.arange(questions)
    labels = list(groups)
    if len(labels) != questions:
        raise ValueError(f"groups: {len(labels)} labels for {questions} questions; give one per question")
    return np.unique(np.asarray([str(g) for g in labels]), return_inverse=True)[1].reshape(-1)


def resampled_pairs(per_question: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `counts` (how often each group is drawn, the same draw for every arm): the arms' accuracies
    (rows x arms) and each paired difference's variance over the drawn groups (rows x arms x arms; cluster-robust:
    a group's questions move together), the question part of a resample's studentisation."""
    groups, arms = counts.shape[1], per_question.shape[1]
    sums = np.zeros((groups, arms))
    np.add.at(sums, codes, per_question)
    sizes = np.bincount(codes, minlength=groups).astype(float)
    drawn = counts @ sizes
    accuracies = (counts @ sums) / drawn[:, None]
    # Per pair (i, j), d = arm j - arm i: sum over drawn groups of (S_d - size * mean_d)^2, expanded so that every
    # pair comes from three matrix products rather than a loop.
    products = (counts @ (sums[:, :, None] * sums[:, None, :]).reshape(groups, -1)).reshape(-1, arms, arms)
    own = np.einsum("rii->ri", products)
    squares = own[:, None, :] + own[:, :, None] - 2 * products
    weighted = counts @ (sizes[:, None] * sums)
    differences = accuracies[:, None, :] - accuracies[:, :, None]
    spread = (
        squares
        - 2 * differences * (weighted[:, None, :] - weighted[:, :, None])
        + differences**2 * (counts @ sizes**2)[:, None, None]
    )
    return accuracies, np.maximum(spread, 0.0) / drawn[:, None, None] ** 2


@dataclass(frozen=True)
class Studentised:
    """Each paired difference over its own estimated standard error, observed and in every resample."""

    accuracies: np.ndarray  # arms: observed
    replicates: np.ndarray  # resamples x arms: question groups redrawn, each arm's run term drawn over its seeds
    observed: np.ndarray  # arms x arms: (accuracy j - accuracy i) / its standard error
    simulated: np.ndarray  # resamples x arms x arms: the same for each resample's deviation from the observed
    variances: np.ndarray  # arms x arms: the observed paired differences' variances
    degrees_of_freedom: float | None  # Satterthwaite's for those variances (median over pairs); None: not estimated


def _ratio(numerator: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """numerator / sqrt(variance), 0 where the variance is 0 (two arms that answered every question alike)."""
    safe = np.where(variance > 0, variance, 1.0)
    return np.where(variance > 0, numerator / np.sqrt(safe), 0.0)


def studentised(
    per_question: np.ndarray,
    codes: np.ndarray,
    seeds: np.ndarray,
    run: RunSpread,
    resamples: int,
    rng: np.random.Generator,
) -> Studentised:
    """The bootstrap-t of every paired difference. A pair's variance is its question part (the groups' spread; with
    the seeds' question-level noise in it) plus (1/seeds_i + 1/seeds_j) times the seed-level variance. Pooled from
    the seeds, that variance is the between-seed variance of a seed's accuracy itself, question noise included,
    and its question-level part leaves the question part instead: counted once, and the estimate is not floored at
    the question noise (a floor inflates it when there is no run spread, and a plug-in floored at zero is what
    made equal arms look different under a run spread). Each resample redraws that variance from its sampling
    distribution (scaled chi-square, sum(seeds - 1) degrees of freedom) and studentises with it: the statistic is
    then a t whose degrees of freedom are those the data gave, near the seeds' when the run part dominates."""
    groups = int(codes.max()) + 1
    counts = rng.multinomial(groups, np.full(groups, 1 / groups), size=resamples).astype(float)
    observed_row, observed_spread = resampled_pairs(per_question, codes, np.ones((1, groups)))
    accuracies, observed_spread = observed_row[0], observed_spread[0]
    replicates, spreads = resampled_pairs(per_question, codes, counts)
    weights = 1 / seeds[None, :] + 1 / seeds[:, None]
    noise = run.question_noise or 0.0
    run_variance = (run.sd or 0.0) ** 2
    if run.source == "pooled" and run.degrees_of_freedom and run.between_seed_variance is not None:
        seed_variance = run.between_seed_variance
        df = run.degrees_of_freedom
        seed_draws = (run_variance + noise) * rng.chisquare(df, size=resamples) / df
    else:  # given (known) or none
        seed_variance, df, seed_draws = run_variance, None, np.full(resamples, run_variance)
    question_part = np.maximum(observed_spread - weights * noise, 0.0)
    variances = question_part + weights * seed_variance
    differences = accuracies[None, :] - accuracies[:, None]
    # Where a pair's question spread falls short of the seeds' question noise (by chance: it holds that noise), the
    # variance above counts the noise in full; the resampled numerators must then carry it in full too, and each
    # resample's question part moves in proportion to its spread, or the resamples' t would be too narrow.
    widen = _ratio(np.sqrt(np.maximum(observed_spread, weights * noise)), observed_spread)
    runs = rng.standard_normal(replicates.shape) * np.sqrt(run_variance / seeds)
    deviations = (replicates[:, None, :] - replicates[:, :, None] - differences) * widen
    deviations += runs[:, None, :] - runs[:, :, None]
    replicate_variances = question_part * _ratio(spreads, observed_spread**2) + weights * seed_draws[:, None, None]
    replicates = replicates + runs
    pairs = ~np.eye(len(seeds), dtype=bool)
    t_df = None
    if df is not None and pairs.any() and (variances[pairs] > 0).all():
        satterthwaite = variances**2 / (question_part**2 / max(1, groups - 1) + (weights * seed_variance) ** 2 / df)
        t_df = float(np.median(satterthwaite[pairs]))
    return Studentised(
        accuracies,
        replicates,
        _ratio(differences, variances),
        _ratio(deviations, replicate_variances),
        variances,
        t_df,
    )


def unresolvable_pairs(per_question: np.ndarray, codes: np.ndarray, level: float) -> np.ndarray:
    """arms x arms: the pairs whose arms differ on so few groups that even every one of them going the same way
    would not pass an exact sign test at `level` (fewer than 6 at 95%). A bootstrap over so few units is no evidence
    (4 questions with one answered differently resample to p about 0.05), so such a pair decides no elimination."""
    sums = np.zeros((int(codes.max()) + 1, per_question.shape[1]))
    np.add.at(sums, codes, per_question)
    discordant = (~np.isclose(sums[:, None, :], sums[:, :, None])).sum(axis=0)
    return 2 * 0.5**discordant >= 1 - level


def confidence_set(standardised: np.ndarray, simulated: np.ndarray) -> tuple[list[int], list[float]]:
    """The model confidence set's elimination with the range statistic on studentised paired differences of
    accuracy ([i, j]: arm j over arm i, so loss i over loss j) and their resampled deviations: the arms in
    elimination order (the survivor last) and their MCS p-values."""
    left = list(range(len(standardised)))
    order: list[int] = []
    p_values: list[float] = []
    while len(left) > 1:
        within = np.ix_(left, left)
        statistic = standardised[within].max()
        # A resample that ties the statistic counts against rejecting (0/1 scores tie often): arch counts only
        # those above it, the same on continuous scores. (1 + count) / (1 + resamples): a Monte Carlo p-value
        # that keeps its level at any number of resamples.
        beyond = int((simulated[(slice(None), *within)].max(axis=(1, 2)) >= statistic - 1e-12).sum())
        p = (1 + beyond) / (1 + len(simulated))
        worst = left[int(np.unravel_index(standardised[within].argmax(), (len(left), len(left)))[0])]
        order.append(worst)
        p_values.append(max([p, *p_values]))
        left.remove(worst)
    return [*order, left[0]], [*p_values, 1.0]


def verdict(
    scores: Mapping[str, Sequence[Sequence[float]] | np.ndarray],
    groups: Sequence[Hashable] | None = None,
    level: float = LEVEL,
    run_sd: float | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Verdict:
    """The arms that could be the best at `level`, and the rest (worse).

    `scores`: arm name -> seeds x questions of 1/0 or shares (arms may have different numbers of seeds; every arm
    answered the same questions in the same order). `groups`: each question's hold-out group (near-variants share
    one); None: each question is its own. `run_sd`: the run-to-run SD of an arm's accuracy from an earlier sweep (its
    report's pooled figure), used instead of this sweep's estimate."""
    if not scores:
        raise ValueError("scores: give at least one arm")
    if not 0 < level < 1:
        raise ValueError(f"level {level}: give a share between 0 and 1, e.g. 0.95")
    if run_sd is not None and not 0 <= run_sd < 1:
        raise ValueError(f"run_sd {run_sd}: give the SD of an arm's accuracy as a share, e.g. 0.02")
    names = list(scores)
    matrices = [_matrix(name, scores[name]) for name in names]
    widths = {m.shape[1] for m in matrices}
    if len(widths) != 1:
        raise ValueError(f"scores: paired arms answer the same questions, got {sorted(widths)} questions")
    questions = widths.pop()
    codes = _group_codes(groups, questions)
    run = RunSpread(run_sd, "given", None) if run_sd is not None else run_spread(matrices)
    per_question = np.stack([m.mean(axis=0) for m in matrices], axis=1)
    seeds = np.array([len(m) for m in matrices], dtype=float)
    found = studentised(per_question, codes, seeds, run, resamples, np.random.default_rng(seed))
    observed, replicates = found.accuracies, found.replicates
    if len(names) > 1:
        # Their resampled values stay in the statistic's distribution: that only raises the p-values.
        standardised = np.where(unresolvable_pairs(per_question, codes, level), 0.0, found.observed)
        order, p_values = confidence_set(standardised, found.simulated)
        # The power statement's input: a paired difference's standard error (power.py applies its t).
        pair_se = float(np.median(np.sqrt(found.variances[~np.eye(len(names), dtype=bool)])))
    else:
        order, p_values, pair_se = [0], [1.0], 0.0
    mcs_p = dict(zip(order, p_values, strict=True))
    arms = tuple(
        ArmEstimate(name, len(m), float(observed[i]), _percentiles(replicates[:, i], level), mcs_p[i])
        for i, (name, m) in enumerate(zip(names, matrices, strict=True))
    )
    kept = sorted((i for i in order if mcs_p[i] > 1 - level), key=lambda i: -observed[i])
    return Verdict(
        arms=arms,
        could_be_best=tuple(names[i] for i in kept),
        worse=tuple(names[i] for i in order if i not in kept),
        level=level,
        method=METHOD,
        questions=questions,
        groups=int(codes.max()) + 1,
        run=run,
        t_degrees_of_freedom=found.degrees_of_freedom,
        pair_se=pair_se,
    )


def seed_correlation(matrices: Sequence[np.ndarray]) -> float | None:
    """How much of per-question correctness the question fixes, over the arms with several seeds: the intraclass
    correlation of one-way ANOVA (questions as groups, seeds as repeats), pooled; None without repeats."""
    within = between = 0.0
    count = 0
    for matrix in matrices:
        seeds, n = matrix.shape
        if seeds < 2:
            continue
        means = matrix.mean(axis=0)
        spread = float(((matrix - means) ** 2).sum() / (n * (seeds - 1)))
        within += spread
        between += float(means.var(ddof=1)) - spread / seeds
        count += 1
    if not count or within + between <= 0:
        return None
    return max(0.0, min(1.0, between / (between + within)))
