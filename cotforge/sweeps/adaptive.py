"""An adaptive sweep: seeds in rounds, and after each round only the arms that could still be the best get the next
seed (`cotforge sweep --adaptive`). A round is a list of cells run to the end before the next is chosen, so any way of
running a list of cells (one after another, or in parallel) serves it."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from cotforge.sweeps.planning import Cell, SweepPlan
from cotforge.sweeps.statistics import LEVEL, RESAMPLES, SEED, verdict


def next_round_arms(
    scores: Mapping[str, Sequence[Sequence[float]] | np.ndarray],
    groups: Sequence[Hashable] | None = None,
    run_sd: float | None = None,
    level: float = LEVEL,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[list[str], dict[str, str]]:
    """The arms that get another seed, and why each other one does not: the verdict calls it worse, or one arm is
    left. The verdict at one seed cannot see run-to-run variance: an arm dropped then keeps its one seed, and the
    final verdict, with the run term the later seeds measure, is still over every arm. `resamples` and `seed`: those
    the final verdict uses (its defaults), so that a round and the final verdict differ only by their data."""
    if len(scores) < 2:
        return list(scores), {}
    found = verdict(scores, groups, level, run_sd, resamples=resamples, seed=seed)
    p_values = {a.name: a.mcs_p for a in found.arms}
    seeds = max(len(s) for s in scores.values())
    reasons = {
        arm: f"worse than the best at the {1 - level:.0%} level after {seeds} seed(s) (MCS p {p_values[arm]:.3f})"
        for arm in found.worse
    }
    if len(found.could_be_best) == 1:
        only = found.could_be_best[0]
        return [], reasons | {only: "the only arm that could be the best: no further seed needed"}
    return list(found.could_be_best), reasons


class SkippedCell(BaseModel):
    """A cell an adaptive sweep did not run, and why."""

    name: str
    student: str
    arm: str
    seed: int
    reason: str


class AdaptiveRecord(BaseModel):
    """adaptive.json: the cells an adaptive sweep chose not to run, and why."""

    skipped: list[SkippedCell]


def adaptive_rounds(
    plan: SweepPlan,
    run_round: Callable[[list[Cell]], None],
    seed_scores: Callable[[str], dict[str, list[list[float]]]],
    groups: Sequence[Hashable] | None,
    pruned: Sequence[SkippedCell] = (),
) -> list[SkippedCell]:
    """One round per seed: run the round's cells (all of them, to the end), then give the next seed only to each
    student's arms that could still be the best, until one is left, the seeds run out or the cell budget is spent.
    Arms in `pruned` (--prune) never get a round. Returns the cells not run, with why."""
    s = plan.settings
    reasons = {(c.student, c.arm): c.reason for c in pruned}
    active = {student: [a.label for a in plan.arms if (student, a.label) not in reasons] for student in s.students}
    skipped: list[SkippedCell] = []
    budget = s.cell_budget
    for seed in s.seeds:
        listed = [c for c in plan.cells if c.seed == seed]
        chosen = [c for c in listed if c.arm.label in active[c.student]]
        if budget is not None and len(chosen) > budget:
            chosen = chosen[:budget]  # in the plan's order: students and arms as listed
        for cell in listed:
            if cell not in chosen:
                why = reasons.get((cell.student, cell.arm.label), f"the cell budget ({s.cell_budget}) was spent")
                skipped.append(
                    SkippedCell(name=cell.name, student=cell.student, arm=cell.arm.label, seed=seed, reason=why)
                )
        if chosen:
            run_round(chosen)
        if budget is not None:
            budget -= len(chosen)
        for student in s.students:
            active[student], why_not = next_round_arms(seed_scores(student), groups, s.run_sd)
            reasons |= {(student, arm): text for arm, text in why_not.items()}
    return skipped
