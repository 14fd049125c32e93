"""`cotforge sweep --predict` and `--prune K`: every arm scored under every student before training, the predicted
order printed, only the K best-scored arms (and the baselines) trained, and the report's rho of each score against
the measured accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.quality.rsr import ScoredBy
from cotforge.sweeps import SweepSettings, build_report, run_sweep
from cotforge.sweeps.adaptive import adaptive_rounds
from cotforge.sweeps.agreement import prediction_markdown, score_agreement
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.planning import Arm, SweepPlan
from cotforge.sweeps.predict import ArmScore, Prediction, pruned_cells

from .test_sweep import corpus, settings  # noqa: F401  (corpus: the sweep tests' fixture)

SCORED_BY = ScoredBy(student="s", weights_digest="d", template="chat", reasoning="drop", max_length=64)


def _prediction(rsr: list[float], rank: list[float]) -> Prediction:
    arms = [
        ArmScore(student="s", arm=f"a{i}", records=1, tokens=1, rsr=r, mean_surprisal=1.0 + i, mean_rank=k)
        for i, (r, k) in enumerate(zip(rsr, rank, strict=True))
    ]
    return Prediction(scored_by={"s": SCORED_BY}, arms=arms)


def test_spearman_of_each_score_against_accuracy_on_a_hand_made_example() -> None:
    """Five arms: RSR orders them as accuracy does but for one swapped pair, rho 1 - 6*2/(5*24) = 0.9 once negated
    (lower RSR predicts better); mean rank exactly the wrong way round, -1; surprisal rises with the arm's index, as
    accuracy falls but for the swap: 0.9 too."""
    prediction = _prediction(rsr=[1, 2, 3, 4, 5], rank=[5, 3, 4, 2, 1])
    accuracy = {("s", f"a{i}"): a for i, a in enumerate([0.5, 0.3, 0.4, 0.2, 0.1])}
    found = {a.score: a for a in score_agreement(prediction, accuracy)}
    assert found["rsr"].spearman == pytest.approx(0.9) and found["rsr"].arms == 5
    assert found["mean_rank"].spearman == pytest.approx(-1.0)
    assert found["mean_surprisal"].spearman == pytest.approx(0.9)
    low, high = found["rsr"].interval
    assert -1 <= low <= 0.9 <= high <= 1


def test_fewer_than_four_arms_give_no_rho() -> None:
    prediction = _prediction(rsr=[1, 2, 3], rank=[1, 2, 3])
    found = score_agreement(prediction, {("s", f"a{i}"): a for i, a in enumerate([0.3, 0.2, 0.1])})
    assert all(a.spearman is None and a.interval is None and a.arms == 3 for a in found)
    assert "| s | RSR | 3 | not informative | - |" in prediction_markdown([], found, str)


def test_predict_scores_every_arm_for_every_student_and_prints_the_order(
    corpus: Path,  # noqa: F811
    student: Path,
    tmp_path: Path,
) -> None:
    """A dry run with --predict trains nothing, scores each arm (a mixture as its parts' very records, each record
    once) and prints the order, lowest RSR first."""
    arms = ["g1", "g5", "g1:0.5+g5:0.5"]
    args = ["sweep", "--dataset", str(corpus), "--student", str(student), "--out", str(tmp_path), "--dry-run"]
    result = CliRunner().invoke(app, [*args, "--predict", *(f"--arm={a}" for a in arms), "--max-length", "128"])
    assert result.exit_code == 0, result.output
    prediction = Prediction.model_validate_json((tmp_path / "predicted.json").read_text())
    assert sorted(a.arm for a in prediction.arms) == ["g1", "g1-0.5+g5-0.5", "g5"]
    assert all(a.student == str(student) and a.records > 0 and a.tokens > 0 and a.rsr for a in prediction.arms)
    order = [a.arm for a in prediction.order(str(student))]
    assert [a.rsr for a in prediction.order(str(student))] == sorted(a.rsr for a in prediction.arms)
    printed = [line.split(". ", 1)[1].split(":")[0] for line in result.output.splitlines() if ". " in line[:6]]
    assert printed == order and "mean surprisal" in result.output and "mean rank" in result.output
    stored = pl.read_parquet(SweepDir(tmp_path).predict_dir / "suitability.parquet")
    assert stored["key"].n_unique() == stored.height, "a record shared by a mixture and its part is scored once"
    assert not list(tmp_path.glob("cells/*")), "a dry run trains nothing"
    again = CliRunner().invoke(app, [*args, "--predict", *(f"--arm={a}" for a in arms), "--max-length", "128"])
    assert again.exit_code == 0 and f"{stored.height} already scored" in again.output, "a re-run scores nothing twice"
    other = [*args, "--predict", "--arm=g1", "--arm=g5", "--max-length", "128"]
    (tmp_path / "sweep.json").write_text(settings(corpus, student).model_dump_json())  # another sweep's folder
    before = (tmp_path / "predicted.json").read_bytes()
    refused = CliRunner().invoke(app, other)
    assert refused.exit_code == 2 and "holds a sweep with other settings" in refused.output
    assert (tmp_path / "predicted.json").read_bytes() == before, "no scores written into another sweep's folder"


def test_prune_trains_the_best_scored_arms_and_the_baselines_and_the_report_says_what_it_skipped(
    corpus: Path,  # noqa: F811
    student: Path,
    tmp_path: Path,
) -> None:
    chosen = settings(corpus, student, levels=[0, 1, 5], baselines=True, prune=1)
    plan, left = run_sweep(chosen, tmp_path, log=lambda _: None)
    assert left == [] and {a.label for a in plan.arms} == {"answer-only", "g1", "g5", "human"}
    prediction = Prediction.model_validate_json((tmp_path / "predicted.json").read_text())
    best, worse = [a.arm for a in prediction.order(str(student)) if a.arm in ("g1", "g5")]
    trained = {json.loads(p.read_text())["arm"] for p in tmp_path.glob("cells/*/cell.json")}
    assert trained == {"answer-only", "human", best}, "K = 1 arm plus both baselines"
    report = build_report(tmp_path)
    assert [(c.arm, c.seed) for c in report.skipped] == [(worse, 1)]
    assert "--prune 1" in report.skipped[0].reason
    markdown = (tmp_path / "sweep_report.md").read_text()
    assert f"--{worse}--seed1: --prune 1: predicted 2 of 2" in markdown
    scored = {a.arm: a.rsr for a in prediction.arms}
    assert {a.arm: a.rsr for a in report.arms} == {arm: scored[arm] for arm in trained}
    assert {(a.score, a.arms, a.spearman) for a in report.prediction} == {
        (score, 3, None) for score in ("rsr", "mean_surprisal", "mean_rank")
    }
    assert "not informative" in markdown


def test_pruned_arms_never_get_an_adaptive_round_and_baselines_are_never_pruned(tmp_path: Path) -> None:
    """Five arms, --prune 1: the lowest-RSR scored arm and both baselines (however badly scored) get rounds; the other
    two arms none, for any seed, with --prune's reason."""
    labels = ["g1", "g2", "g3", "answer-only", "human"]
    config = SweepSettings(
        corpus=str(tmp_path),
        students=["s"],
        seeds=[1, 2],
        adaptive=True,
        prune=1,
    )
    plan = SweepPlan(config, [Arm(label=a, subset=a, level=None) for a in labels], {}, [], {})
    rsr = {"g1": 2.0, "g2": 1.0, "g3": 3.0, "answer-only": 9.0, "human": 8.0}
    prediction = Prediction(
        scored_by={"s": SCORED_BY},
        arms=[
            ArmScore(student="s", arm=a, records=1, tokens=1, rsr=r, mean_surprisal=1, mean_rank=r)
            for a, r in rsr.items()
        ],
    )
    pruned = pruned_cells(plan, prediction, 1)
    assert sorted((c.arm, c.seed) for c in pruned) == [("g1", 1), ("g1", 2), ("g3", 1), ("g3", 2)]
    assert "predicted 3 of 3 scored arms (RSR 3.000)" in next(c.reason for c in pruned if c.arm == "g3")
    rounds: list[list[str]] = []
    equal = [1.0, 0.0] * 20  # every arm alike: the verdict drops none, so only --prune keeps arms out
    skipped = adaptive_rounds(
        plan,
        lambda cells: rounds.append([c.arm.label for c in cells]),
        lambda student: {arm: [equal] * len(rounds) for arm in rounds[0]},
        None,
        pruned,
    )
    assert rounds == [["g2", "answer-only", "human"]] * 2
    assert sorted((c.arm, c.seed) for c in skipped) == sorted((c.arm, c.seed) for c in pruned)
