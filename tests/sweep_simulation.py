"""Simulated sweeps: arms equally good (the null case a selection-aware verdict must survive) or one arm better, with
run-to-run spread and clusters of near-variant questions. Used by tests/test_sweep_statistics.py and
benchmarks/sweep_selection.py."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _shift(p: np.ndarray, mean: float, by: np.ndarray | float) -> np.ndarray:
    """Move every question's chance of a right answer so that their mean moves by exactly `by` and each stays within
    0..1 (towards 1 in proportion to 1 - p, towards 0 in proportion to p); |by| below min(mean, 1 - mean)."""
    by = np.asarray(by, dtype=float)
    return np.where(by >= 0, p + by * (1 - p) / (1 - mean), p + by * p / mean)


def simulated_arms(
    rng: np.random.Generator,
    arms: int,
    questions: int,
    seeds: int | Sequence[int],
    accuracy: float,
    question_share: float = 0.5,
    gaps: Sequence[float] = (),
    run_sd: float = 0.0,
    group_size: int = 1,
    group_share: float = 0.0,
) -> dict[str, np.ndarray]:
    """Per arm, seeds x questions of 1/0. Each question has a difficulty p_q drawn from a Beta with mean `accuracy`
    whose spread puts `question_share` of an answer's variance on the question (an intraclass correlation), the same
    in every arm; arm i's chances are moved by gaps[i] (none: 0), and each run's (arm and seed) by a run effect of SD
    `run_sd`. Questions come in groups of `group_size` near-variants sharing a difficulty; within a run, an answer
    copies its group's one draw with probability `group_share` (a run that gets a story right gets its variants
    right), which makes a group's answers correlated."""
    concentration = (1 - question_share) / question_share  # Beta(a, b) with a + b = c has ICC 1 / (c + 1)
    count = -(-questions // group_size)
    group_of = np.arange(questions) // group_size
    difficulty = rng.beta(accuracy * concentration, (1 - accuracy) * concentration, size=count)[group_of]
    per_arm = [seeds] * arms if isinstance(seeds, int) else list(seeds)
    result = {}
    for i, runs in enumerate(per_arm):
        gap = gaps[i] if i < len(gaps) else 0.0
        chance = _shift(difficulty, accuracy, gap)
        chances = _shift(chance[None, :], accuracy + gap, rng.normal(0.0, run_sd, size=(runs, 1)))
        own = rng.random((runs, questions))
        shared = rng.random((runs, count))[:, group_of]
        draw = np.where(rng.random((runs, questions)) < group_share, shared, own)
        result[f"arm{i}"] = (draw < chances).astype(float)
    return result
