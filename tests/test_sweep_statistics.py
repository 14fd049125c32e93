"""The sweep's statistics: each variance counted once, step-down elimination (the model confidence set), power."""

from __future__ import annotations

import numpy as np
import pytest

from cotforge.sweeps import verdict
from cotforge.sweeps.power import gap_for_power, planned_pair_se, power_sentence, power_to_name_best
from cotforge.sweeps.statistics import (
    bootstrap_interval,
    confidence_set,
    run_spread,
    seed_correlation,
    studentised,
)

from .sweep_simulation import simulated_arms


def test_equal_arms_are_rarely_called_worse() -> None:
    """200 simulated studies of 8 equal arms at 2 seeds: some arm is called worse in about 5% of them at most."""
    rng = np.random.default_rng(7)
    studies = 200
    excluded = sum(
        bool(verdict(simulated_arms(rng, 8, 199, 2, 0.15, 0.2), resamples=500, seed=study).worse)
        for study in range(studies)
    )
    assert excluded / studies <= 0.075  # the familywise rate is 5%; 200 studies leave some room


def test_a_clearly_better_arm_is_named_alone() -> None:
    rng = np.random.default_rng(1)
    arms = {
        "weak": (rng.random((2, 300)) < 0.1).astype(float),
        "strong": (rng.random((2, 300)) < 0.5).astype(float),
        "weak2": (rng.random((1, 300)) < 0.1).astype(float),  # arms may have different numbers of seeds
    }
    found = verdict(arms)
    assert found.could_be_best == ("strong",) and set(found.worse) == {"weak", "weak2"}
    by_name = {a.name: a for a in found.arms}
    assert by_name["strong"].mcs_p == 1.0 and by_name["weak"].mcs_p < 0.05
    assert by_name["weak2"].seeds == 1 and by_name["strong"].interval[0] > 0.4


def test_the_elimination_is_arch_mcs_with_the_range_statistic() -> None:
    """arch.bootstrap.MCS (method R) on the same losses and the same resampled questions gives the same elimination
    and p-values (shares, as a question's mean over seeds is, so that no resample ties the statistic: ties count
    against rejecting here and for arch in its favour). arch standardises by each pair's bootstrap variance, the
    verdict by each resample's own; the elimination on either is the same code. arch's p-value is the share of
    resamples beyond the statistic, the verdict's (1 + that count) / (1 + resamples)."""
    from arch.bootstrap import MCS

    rng = np.random.default_rng(4)
    per_question = np.stack([rng.beta(4 * p, 4 * (1 - p), size=150) for p in (0.2, 0.25, 0.3, 0.36, 0.4)], axis=1)
    mcs = MCS(1 - per_question, size=0.05, reps=400, block_size=1, bootstrap="circular", seed=3)
    mcs.compute()
    replicates = np.stack([per_question[index].mean(axis=0) for index in mcs._bootstrap_indices])
    observed = per_question.mean(axis=0)
    differences = observed[None, :] - observed[:, None]
    deviations = replicates[:, None, :] - replicates[:, :, None] - differences
    scale = np.sqrt(np.where(np.eye(5, dtype=bool), np.inf, (deviations**2).mean(axis=0)))
    order, p_values = confidence_set(differences / scale, deviations / scale)
    theirs = mcs.pvalues["Pvalue"]
    assert order == list(theirs.index)
    assert p_values[:-1] == pytest.approx([(1 + 400 * p) / 401 for p in theirs.to_numpy()[:-1]])
    assert min(p_values) < 0.05 < max(p_values[:-1])  # a real elimination and a real stop, not a trivial case


def test_near_variant_groups_are_resampled_whole() -> None:
    """Every question copied five times: resampled as five independent questions the interval shrinks by about
    sqrt 5; resampled by its groups it is the interval of the questions once."""
    rng = np.random.default_rng(2)
    once = {f"arm{i}": (rng.random((1, 120)) < 0.3).astype(float) for i in range(3)}
    copied = {name: np.repeat(m, 5, axis=1) for name, m in once.items()}
    groups = list(np.repeat(np.arange(120), 5))
    width = [a.interval[1] - a.interval[0] for a in verdict(once).arms]
    grouped = [a.interval[1] - a.interval[0] for a in verdict(copied, groups).arms]
    ungrouped = [a.interval[1] - a.interval[0] for a in verdict(copied).arms]
    assert grouped == pytest.approx(width, rel=0.15)  # two bootstraps of 2,000 resamples
    assert np.mean(ungrouped) < 0.6 * np.mean(width)
    with pytest.raises(ValueError, match="groups"):
        verdict(copied, groups[:-1])


def test_run_spread_is_pooled_once_and_one_seed_says_so() -> None:
    rng = np.random.default_rng(5)
    arms = simulated_arms(rng, 30, 400, 3, 0.3, 0.3, run_sd=0.04)
    spread = run_spread(list(arms.values()))
    assert spread.source == "pooled" and spread.degrees_of_freedom == 60
    assert spread.sd == pytest.approx(0.04, abs=0.012)
    assert run_spread([np.asarray(m) for m in simulated_arms(rng, 8, 400, 3, 0.3, 0.3).values()]).sd < 0.015
    one_seed = verdict({name: m[:1] for name, m in arms.items()})
    assert one_seed.run.source == "none" and "about these trained models" in one_seed.run_sentence
    given = verdict({name: m[:1] for name, m in arms.items()}, run_sd=0.04)
    assert given.run.source == "given" and "--run-sd" in given.run_sentence
    assert given.pair_se > 1.3 * one_seed.pair_se  # the given run-to-run variance enters


def test_the_seed_level_variance_enters_once_as_measured() -> None:
    """Two arms, two seeds, whose seeds' accuracies differ less than their question-level noise predicts (no run
    spread seen). A paired difference's variance is the question part less the seeds' question noise (it entered
    through the per-question means) plus the between-seed variance as measured: not floored at the noise, which made a
    sweep with no run spread pay for one. Its degrees of freedom (Satterthwaite's) weigh the question x arm part
    (questions - 1) against the seed-level part (sum of seeds - 1)."""
    arms = simulated_arms(np.random.default_rng(6), 2, 300, 2, 0.3, 0.3, gaps=(0.0, 0.1))
    found = verdict(arms, resamples=50)
    a, b = (np.asarray(m) for m in arms.values())
    difference = b.mean(axis=0) - a.mean(axis=0)
    question_part = difference.var() / 300
    noise = np.mean([((m - m.mean(0) - m.mean(1, keepdims=True) + m.mean()) ** 2).sum() / 299 / 300 for m in (a, b)])
    between = np.mean([m.mean(axis=1).var(ddof=1) for m in (a, b)])
    assert between < noise  # the case: a floor at the noise would add a run term the seeds do not show
    variance = question_part - noise + between  # weights 1/2 + 1/2 = 1
    assert found.pair_se**2 == pytest.approx(variance)
    assert found.pair_se**2 < question_part
    df = variance**2 / ((question_part - noise) ** 2 / 299 + between**2 / 2)
    assert found.t_degrees_of_freedom == pytest.approx(df)


def test_a_resampled_difference_is_a_t_with_the_seeds_degrees_of_freedom() -> None:
    """Six equal arms, three seeds: the seed-level variance is estimated with 12 degrees of freedom, so a pair's
    resampled studentised difference should vary as a t with 12 (variance 1.2), even for the pair whose question
    spread fell short of the seeds' question noise by chance (the variance then counts that noise in full, and the
    resampled numerators must carry it too: without them the t was too narrow, about 1.08, and equal arms were
    called worse too often)."""
    spreads = []
    for seed in range(4):
        arms = simulated_arms(np.random.default_rng(seed), 6, 300, 3, 0.3, 0.3)
        matrices = [np.asarray(m) for m in arms.values()]
        per_question = np.stack([m.mean(axis=0) for m in matrices], axis=1)
        found = studentised(
            per_question, np.arange(300), np.full(6, 3.0), run_spread(matrices), 4000, np.random.default_rng(0)
        )
        question_spread = (per_question[:, None, :] - per_question[:, :, None]).var(axis=0) + np.eye(6)
        i, j = np.unravel_index(question_spread.argmin(), question_spread.shape)
        assert question_spread[i, j] / 300 < 0.9 * (2 / 3) * run_spread(matrices).question_noise  # the case
        spreads.append(found.simulated[:, i, j].var())
    assert np.mean(spreads) == pytest.approx(12 / 10, abs=0.08)


def test_a_second_seed_narrows_a_paired_difference() -> None:
    """Seeds are never redrawn inside an arm: a second seed averages question-level noise away, so the paired
    standard error falls (redrawing seeds made it rise by about sqrt((3m - 2) / m) / sqrt(2))."""
    rng = np.random.default_rng(6)
    one, two = [], []
    for study in range(20):
        arms = simulated_arms(rng, 8, 199, 2, 0.3, 0.3)
        one.append(verdict({n: m[:1] for n, m in arms.items()}, resamples=400, seed=study).pair_se)
        two.append(verdict(arms, resamples=400, seed=study).pair_se)
    assert np.mean(two) < 0.9 * np.mean(one)


def test_bad_scores_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="scores\\['a'\\]"):
        verdict({"a": [0.0, 1.0], "b": [[0.0, 1.0]]})
    with pytest.raises(ValueError, match="same questions"):
        verdict({"a": [[0.0, 1.0]], "b": [[0.0, 1.0, 1.0]]})
    with pytest.raises(ValueError, match="0 and 1"):
        verdict({"a": [[2.0, 1.0]], "b": [[0.0, 1.0]]})


def test_power_to_name_the_best_alone() -> None:
    assert power_to_name_best(8, 0.0, 0.02) < 0.05
    assert power_to_name_best(8, 0.04, 0.02) < power_to_name_best(8, 0.06, 0.02) < power_to_name_best(8, 0.1, 0.02)
    eighty = gap_for_power(8, 0.02, 0.15)
    assert power_to_name_best(8, eighty, 0.02, 0.15) == pytest.approx(0.8, abs=0.01)
    assert gap_for_power(2, 0.02, 0.15) < eighty  # more arms, more eliminations to win
    assert gap_for_power(8, 0.02) < eighty  # a better arm at 15% + gap answers less predictably than the others
    assert gap_for_power(8, 0.02, 0.15, df=8) > eighty  # an estimated variance costs power
    # A run's luck does not grow with accuracy: where it is half the variance, the better arm's wider binomial
    # variance widens only the other half, and the power at the same standard error is higher.
    assert power_to_name_best(8, 0.08, 0.03, 0.15, run_share=0.5) > power_to_name_best(8, 0.08, 0.03, 0.15) + 0.02
    se = planned_pair_se(199, 1, 0.15)
    assert planned_pair_se(796, 1, 0.15) == pytest.approx(se / 2)
    assert planned_pair_se(199, 2, 0.15) == pytest.approx(se / 2**0.5)
    assert planned_pair_se(199, 2, 0.15, run_sd=0.02) > planned_pair_se(199, 2, 0.15)
    assert "no difference to measure" in power_sentence(3, 0.0, 0.0)


def test_seed_correlation_and_one_seed_interval() -> None:
    identical = [np.stack([np.arange(100) % 3 == 0] * 2).astype(float)]
    assert seed_correlation(identical) == pytest.approx(1.0)
    assert seed_correlation([np.zeros((1, 10))]) is None
    low, high = bootstrap_interval([[1.0] * 30 + [0.0] * 70])
    assert low < 0.3 < high and high - low < 0.2


def test_a_pair_that_differs_on_too_few_questions_is_never_told_apart() -> None:
    # 4 questions, one answered differently: no sign test at 5% could call either arm worse, and the bootstrap over
    # 4 questions alone would (p about 0.05 from the resamples that draw that question three times or more).
    scores = {"g1": [[1, 0, 0, 1]], "g5": [[1, 1, 0, 1]]}
    assert verdict(scores).worse == ()
    # Six questions all going one way is the fewest an exact sign test can resolve at 5%: now it may eliminate.
    many = {"g1": [[0] * 6 + [1] * 30], "g5": [[1] * 6 + [1] * 30]}
    assert verdict(many).worse == ("g1",)
