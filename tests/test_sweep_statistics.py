"""The sweep's statistics: selection-aware, seeds in the uncertainty, power stated."""

from __future__ import annotations

import numpy as np
import pytest

from cotforge.sweeps.statistics import (
    bootstrap_interval,
    compare_with_best,
    holm,
    planned_mde,
    resampled_accuracies,
    seed_correlation,
    sign_flip_p,
)

from .sweep_simulation import equal_arms


def test_equal_arms_rarely_yield_a_winner() -> None:
    """200 simulated studies of 8 equal arms: a single best arm is almost never named, and an arm is called worse than
    another in about 5% of them at most (the familywise level)."""
    rng = np.random.default_rng(7)
    single = excluded = 0
    studies = 200
    for study in range(studies):
        arms = equal_arms(rng, arms=8, questions=199, seeds=2, accuracy=0.15)
        replicates = resampled_accuracies(arms, resamples=1000, seed=study)
        observed = [float(m.mean()) for m in arms.values()]
        found, _ = compare_with_best(observed, replicates)
        best_set = [c.could_be_best for c in found]
        single += sum(best_set) == 1
        excluded += not all(best_set)
    assert single / studies <= 0.06
    assert excluded / studies <= 0.075  # the familywise rate is 5%; 200 studies leave some room


def test_a_clearly_better_arm_is_named_alone() -> None:
    rng = np.random.default_rng(1)
    weak = (rng.random((2, 300)) < 0.1).astype(float)
    strong = (rng.random((2, 300)) < 0.5).astype(float)
    arms = {"weak": weak, "strong": strong, "weak2": (rng.random((2, 300)) < 0.1).astype(float)}
    found, critical = compare_with_best([m.mean() for m in arms.values()], resampled_accuracies(arms))
    assert [c.could_be_best for c in found] == [False, True, False]
    assert found[1].probability_best > 0.99
    assert found[1].mcb_low == 0 and found[0].mcb_high == 0  # the best is best; the others fall short of it
    assert critical > 1.6  # one-sided, two comparisons per arm: above the single test's 1.645


def test_disagreeing_seeds_widen_the_interval() -> None:
    """Two seeds that disagree on which questions they get right: the two-level interval is wider than the
    question-only one, which treats the seeds' mean as if it were fixed."""
    rng = np.random.default_rng(3)
    seed_a = (rng.random(200) < 0.2).astype(float)
    seed_b = np.zeros(200)
    seed_b[:80] = 1.0  # 40% right, different questions
    scores = {"arm": np.stack([seed_a, seed_b])}
    both = resampled_accuracies(scores, seed=0)[:, 0]
    questions_only = resampled_accuracies(scores, seed=0, seeds_too=False)[:, 0]
    assert np.quantile(both, 0.975) - np.quantile(both, 0.025) > 1.3 * (
        np.quantile(questions_only, 0.975) - np.quantile(questions_only, 0.025)
    )
    low, high = bootstrap_interval(scores["arm"])
    assert low < 0.2 and high > 0.35


def test_a_question_half_right_over_two_seeds_is_not_rounded_to_wrong() -> None:
    """Arm B gets 40 questions right in one seed of two, arm A none: B is ahead by 0.2 per question, and the paired
    test sees it (rounding 0.5 down, as round() does, would make the two arms equal)."""
    a = np.zeros((2, 100))
    b = np.zeros((2, 100))
    b[0, :40] = 1.0
    per_question_a, per_question_b = a.mean(axis=0), b.mean(axis=0)
    assert per_question_b.mean() - per_question_a.mean() == pytest.approx(0.2)
    assert sign_flip_p(per_question_a, per_question_b) < 0.001
    assert sign_flip_p(per_question_a, per_question_a) == 1.0


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_seed_correlation_and_planned_power() -> None:
    identical = {"arm": np.stack([np.arange(100) % 3 == 0] * 2).astype(float)}
    assert seed_correlation(identical) == pytest.approx(1.0)
    assert seed_correlation({"arm": np.zeros((1, 10))}) is None
    rng = np.random.default_rng(5)
    independent = {"arm": (rng.random((4, 2000)) < 0.3).astype(float)}
    assert seed_correlation(independent) < 0.05
    one_seed = planned_mde(questions=199, arms=5, seeds=1, prior_accuracy=0.15)
    assert 0.08 < one_seed < 0.14
    assert planned_mde(questions=199, arms=5, seeds=4, prior_accuracy=0.15) < one_seed
    assert planned_mde(questions=796, arms=5, seeds=1, prior_accuracy=0.15) == pytest.approx(one_seed / 2, rel=1e-6)
