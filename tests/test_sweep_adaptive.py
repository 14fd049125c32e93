"""The adaptive sweep: rounds of seeds, each given only to the arms that could still be the best."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from cotforge.sweeps import SweepReport, SweepSettings, build_report, verdict
from cotforge.sweeps.adaptive import adaptive_rounds, next_round_arms
from cotforge.sweeps.cells import run_sweep
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.planning import Arm, Cell, SweepPlan
from cotforge.sweeps.settings import SweepError

from .sweep_simulation import simulated_arms
from .test_sweep_holdout import _fake_sweep


def _plan(tmp_path: Path, arms: int, **options: object) -> SweepPlan:
    settings = SweepSettings(
        corpus=str(tmp_path),
        students=["student"],
        seeds=[1, 2, 3],
        adaptive=True,
        **options,
    )
    return SweepPlan(settings, [Arm(label=f"arm{i}", subset=f"s{i}", level=i) for i in range(arms)], {}, [], {})


def _simulate(plan: SweepPlan, answers: dict[str, np.ndarray]) -> tuple[list[list[Cell]], list]:
    """The rounds run and the cells skipped, with a round that 'runs' a cell by taking its simulated answers."""
    done: dict[str, list[np.ndarray]] = {}
    rounds: list[list[Cell]] = []

    def run_round(cells: list[Cell]) -> None:
        rounds.append(cells)
        for cell in cells:
            done.setdefault(cell.arm.label, []).append(answers[cell.arm.label][cell.seed - 1])

    skipped = adaptive_rounds(plan, run_round, lambda student: {a: list(s) for a, s in done.items()}, None)
    return rounds, skipped


def test_a_clearly_best_arm_ends_the_sweep_after_one_round(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    answers = simulated_arms(rng, 4, 199, 3, 0.15, 0.2, gaps=(0.0, 0.0, 0.4))
    rounds, skipped = _simulate(_plan(tmp_path, 4), answers)
    assert [len(r) for r in rounds] == [4]
    assert len(skipped) == 8 and {c.seed for c in skipped} == {2, 3}
    reasons = {c.arm: c.reason for c in skipped}
    assert "only arm that could be the best" in reasons["arm2"] and "worse than the best" in reasons["arm0"]


def test_equal_arms_all_get_every_seed_and_the_budget_stops_it(tmp_path: Path) -> None:
    answers = {f"arm{i}": np.tile(np.arange(60) % 4 == 0, (3, 1)).astype(float) for i in range(4)}
    rounds, skipped = _simulate(_plan(tmp_path, 4), answers)
    assert [len(r) for r in rounds] == [4, 4, 4] and not skipped
    rounds, skipped = _simulate(_plan(tmp_path, 4, cell_budget=6), answers)
    assert [len(r) for r in rounds] == [4, 2]
    assert len(skipped) == 6 and all("budget (6)" in c.reason for c in skipped)
    assert [c.arm.label for c in rounds[1]] == ["arm0", "arm1"]


def test_next_round_needs_two_arms() -> None:
    assert next_round_arms({"only": np.ones((1, 5))}) == (["only"], {})


def test_a_round_reads_its_data_with_the_final_verdicts_resamples() -> None:
    """A round's verdict and the final one draw the same resamples from the same seed (by default, and when a caller
    passes them), so they differ only by the data: here, where the draw decides which arms stay in the set."""
    arms = simulated_arms(np.random.default_rng(9), 4, 120, 1, 0.15, 0.2, gaps=(0.08,))
    finals = [verdict(arms, resamples=40, seed=seed).could_be_best for seed in range(6)]
    assert len(set(finals)) > 1  # the draw matters for these data
    for seed, final in enumerate(finals):
        assert next_round_arms(arms, resamples=40, seed=seed)[0] == list(final)
    rounds, finals_defaults = inspect.signature(next_round_arms).parameters, inspect.signature(verdict).parameters
    assert [rounds[k].default for k in ("resamples", "seed")] == [
        finals_defaults[k].default for k in ("resamples", "seed")
    ]


def test_budget_and_shards_are_refused_where_they_cannot_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--cell-budget"):
        SweepSettings(corpus="c", students=["s"], cell_budget=4)
    settings = _plan(tmp_path, 2).settings
    with pytest.raises(SweepError, match="without --shard"):
        run_sweep(settings, tmp_path / "out", shard=(0, 2))


def test_the_report_says_which_cells_were_skipped_and_why(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = {key: [int(v) for v in rng.random(60) < 0.3] for key in [("g1", 1), ("g1", 2), ("g3", 1)]}
    sweep = _fake_sweep(tmp_path, {"g1": [1, 2], "g3": [1]}, rows)
    skipped = {"name": "student--g3--seed2", "student": "student", "arm": "g3", "seed": 2, "reason": "worse (test)"}
    SweepDir(tmp_path).adaptive_path.write_text(json.dumps({"skipped": [skipped]}))
    report = build_report(sweep)
    g3 = next(a for a in report.arms if a.arm == "g3")
    assert g3.skipped_seeds == [2] and g3.missing_seeds == [] and report.verdicts["student"].complete
    markdown = (tmp_path / "sweep_report.md").read_text()
    assert "(seed 2 skipped)" in markdown and "- student--g3--seed2: worse (test)" in markdown


def test_a_report_from_before_the_model_confidence_set_still_reads(tmp_path: Path) -> None:
    """sweep_report.json written by the MCB method (P(best), Holm against the observed best, an MDE) loads: the old
    fields are dropped, the new ones take their defaults."""
    rng = np.random.default_rng(0)
    rows = {key: [int(v) for v in rng.random(60) < 0.3] for key in [("g1", 1), ("g3", 1)]}
    build_report(_fake_sweep(tmp_path, {"g1": [1], "g3": [1]}, rows))
    saved = json.loads((tmp_path / "sweep_report.json").read_text())
    for arm in saved["arms"]:
        for new in ("mcs_p", "skipped_seeds"):
            del arm[new]
        arm |= {"probability_best": 0.5, "mcb_interval": [-0.1, 0.0], "vs_best": None}
    old_verdict = saved["verdicts"]["student"]
    saved["verdicts"]["student"] = {
        "could_be_best": old_verdict["could_be_best"],
        "minimum_detectable_effect": 0.1,
        "seed_correlation": None,
        "complete": True,
    }
    del saved["skipped"]
    report = SweepReport.model_validate_json(json.dumps(saved))
    assert report.arms[0].mcs_p is None and report.verdicts["student"].worse == [] and report.skipped == []
