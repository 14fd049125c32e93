"""Simulated sweeps in which every arm is equally good: the null case a selection-aware recommendation must survive.
Used by tests/test_sweep_statistics.py and benchmarks/sweep_selection.py."""

from __future__ import annotations

import numpy as np


def equal_arms(
    rng: np.random.Generator, arms: int, questions: int, seeds: int, accuracy: float, question_share: float = 0.5
) -> dict[str, np.ndarray]:
    """Per arm, seeds x questions of 1/0 from the same model: each question has a difficulty p_q drawn from a Beta
    with mean `accuracy` whose spread puts `question_share` of the variance on the question (an intraclass
    correlation), and every answer to it, in any arm and any seed, is right with probability p_q."""
    concentration = (1 - question_share) / question_share  # Beta(a, b) with a + b = c has ICC 1 / (c + 1)
    difficulty = rng.beta(accuracy * concentration, (1 - accuracy) * concentration, size=questions)
    return {f"arm{i}": (rng.random((seeds, questions)) < difficulty).astype(float) for i in range(arms)}
