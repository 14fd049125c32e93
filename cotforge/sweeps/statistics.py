"""How sure a sweep's answer is: `verdict` names the arms that could be the best, and the rest are worse.

Each source of variance is counted once:
- Questions: a bootstrap over held-out *groups* (clusters of near-variant questions; each question alone when there
  are none) on each arm's per-question mean over its seeds. Every resample draws the same groups for every arm, so
  arms stay paired: the difficulty two arms share cancels from their difference.
- Runs: a training run as a whole may be luckier than another (a run effect). The question bootstrap cannot see it
  (it shifts every question of a run alike), so it enters as one term pooled across arms: the between-seed variance of
  an arm's accuracy beyond what the question-level noise of its seeds explains (two-way ANOVA of seeds x questions),
  estimated from the arms with two seeds or more, with sum(seeds - 1) degrees of freedom. Each resample adds to each
  arm a draw of that term over its seeds, scaled by one chi-square draw per resample: a multivariate t with those
  degrees of freedom, the small-sample correction for a variance estimated from few seeds. Seeds are never redrawn
  inside an arm (that counts their noise twice and made a second seed lower the power). With one seed nothing
  measures the run effect: "worse" is then about the trained models, not the arms, unless `run_sd` (from an earlier
  sweep) supplies it.

Which arm is best: the model confidence set of Hansen, Lunde and Nason (2011, Econometrica 79(2)) with the range
statistic T_R: while the largest standardised paired difference among the arms left rejects "all equal" at the
stated level, the arm behind it is eliminated; the arms left could be the best. Each arm's MCS p-value is the largest
test p-value up to its elimination, selection-aware by construction (arch.bootstrap.MCS, method "R", computes the
same from the same resamples; tests/test_sweep_statistics.py checks it).

numpy on purpose: thousands of resamples of every arm at once take milliseconds, and every number is reproducible
from the seed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
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
    between_seed_variance: float | None = None  # pooled variance of a seed's accuracy: what the estimate's noise scales


def run_spread(matrices: Sequence[np.ndarray]) -> RunSpread:
    """The run-to-run SD pooled over the arms with at least two seeds: per arm, the variance of its seeds' accuracies
    minus the residual mean square of seeds x questions over the number of questions (what the question-level noise
    of a seed alone would give), pooled with weights seeds - 1, floored at zero."""
    excess = total = 0.0
    df = 0
    for matrix in matrices:
        seeds, n = matrix.shape
        if seeds < 2:
            continue
        residual = matrix - matrix.mean(axis=0) - matrix.mean(axis=1, keepdims=True) + matrix.mean()
        mean_square = float((residual**2).sum()) / ((seeds - 1) * max(1, n - 1))
        between = float(matrix.mean(axis=1).var(ddof=1))
        excess += (seeds - 1) * (between - mean_square / n)
        total += (seeds - 1) * between
        df += seeds - 1
    if not df:
        return RunSpread(None, "none")
    return RunSpread(max(0.0, excess / df) ** 0.5, "pooled", df, total / df)


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
    t_degrees_of_freedom: float | None  # of a standardised paired difference when the run term was estimated
    pair_se: float  # median standard error of a paired difference between two arms: the power statement's input

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
                    f"; differences t-corrected with {self.t_degrees_of_freedom:.0f}"
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


def resampled_accuracies(
    per_question: np.ndarray, codes: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """resamples x arms accuracies, groups drawn with replacement (the same draw for every arm)."""
    sums = np.zeros((codes.max() + 1, per_question.shape[1]))
    np.add.at(sums, codes, per_question)
    sizes = np.bincount(codes).astype(float)
    counts = rng.multinomial(len(sizes), np.full(len(sizes), 1 / len(sizes)), size=resamples).astype(float)
    return (counts @ sums) / (counts @ sizes)[:, None]


def pair_variances(replicates: np.ndarray, seeds: np.ndarray, run: RunSpread) -> np.ndarray:
    """arms x arms variances of a paired difference: the question resamples' plus both arms' run terms."""
    questions_part = np.var(replicates[:, None, :] - replicates[:, :, None], axis=0)
    return questions_part + (1 / seeds[None, :] + 1 / seeds[:, None]) * (run.sd or 0.0) ** 2


def with_run_term(
    replicates: np.ndarray, seeds: np.ndarray, run: RunSpread, total: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, float | None]:
    """Each arm's run term over its seeds added to the question resamples. A pooled estimate's uncertainty makes the
    whole standardised difference a t rather than a normal: every resample's deviation is scaled by one chi-square
    draw with Satterthwaite's degrees of freedom for the variance of a paired difference (`total`: the questions'
    part known from many groups, the run part estimated with the seeds' degrees of freedom); returns them too."""
    if not run.sd:
        return replicates, None
    with_runs = replicates + rng.standard_normal(replicates.shape) * run.sd / np.sqrt(seeds)
    if run.degrees_of_freedom is None or run.between_seed_variance is None:
        return with_runs, None
    pairs = ~np.eye(len(seeds), dtype=bool)
    weights = (1 / seeds[None, :] + 1 / seeds[:, None])[pairs]
    df = float(np.median(run.degrees_of_freedom * (total[pairs] / (weights * run.between_seed_variance)) ** 2))
    centre = with_runs.mean(axis=0)
    scale = np.sqrt(df / rng.chisquare(df, size=(len(with_runs), 1)))
    return centre + (with_runs - centre) * scale, df


def confidence_set(observed: np.ndarray, replicates: np.ndarray) -> tuple[list[int], list[float], np.ndarray]:
    """The model confidence set's elimination with the range statistic on accuracies (losses are 1 - accuracy):
    the arms in elimination order (the survivor last), their MCS p-values, and the pairs' bootstrap variances."""
    k = len(observed)
    differences = observed[None, :] - observed[:, None]  # [i, j]: accuracy j - accuracy i, i.e. loss i - loss j
    deviations = replicates[:, None, :] - replicates[:, :, None] - differences
    variances = (deviations**2).mean(axis=0)
    scale = np.sqrt(np.where(variances > 0, variances, np.inf))  # identical arms: a difference that never varies
    standardised, simulated = differences / scale, deviations / scale
    left = list(range(k))
    order: list[int] = []
    p_values: list[float] = []
    while len(left) > 1:
        within = np.ix_(left, left)
        statistic = standardised[within].max()
        # A resample that ties the statistic counts against rejecting (0/1 scores tie often): arch counts only
        # those above it, the same on continuous scores.
        p = float((simulated[(slice(None), *within)].max(axis=(1, 2)) >= statistic - 1e-12).mean())
        worst = left[int(np.unravel_index(standardised[within].argmax(), (len(left), len(left)))[0])]
        order.append(worst)
        p_values.append(max([p, *p_values]))
        left.remove(worst)
    return [*order, left[0]], [*p_values, 1.0], variances


def verdict(
    scores: Mapping[str, Sequence[Sequence[float]] | np.ndarray],
    groups: Sequence[Hashable] | None = None,
    level: float = LEVEL,
    run_sd: float | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
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
    rng = np.random.default_rng(seed)
    questions_only = resampled_accuracies(per_question, codes, resamples, rng)
    total = pair_variances(questions_only, seeds, run)
    replicates, t_df = with_run_term(questions_only, seeds, run, total, rng)
    observed = per_question.mean(axis=0)
    if len(names) > 1:
        order, p_values, _ = confidence_set(observed, replicates)
        # The power statement's input: a difference's standard error before the t scaling, which power.py applies.
        pair_se = float(np.median(np.sqrt(total[~np.eye(len(names), dtype=bool)])))
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
        t_degrees_of_freedom=t_df,
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
