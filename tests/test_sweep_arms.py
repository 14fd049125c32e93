"""`cotforge sweep --arm`: a reasoning teacher's native trace, its condensed levels, prompted levels and mixtures of
them as arms; `--reasoning keep` trains on the trace and thinking students are evaluated with a trace budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.corpus import BuildDir
from cotforge.schemas.record import ReasoningView
from cotforge.sweeps import SweepError, SweepSettings, build_report, plan_sweep, run_sweep
from cotforge.sweeps.arms import parse_arm

from .helpers import scripted_recipe, write_problems
from .scripted_server import TRACE
from .test_build import build
from .test_sweep import settings

ARMS = ["native", "condensed-g3", "g3", "native:0.5+g3:0.5"]


@pytest.fixture
def reasoning_corpus(tmp_path: Path, scripted) -> Path:
    """20 problems of a reasoning teacher: level 3, its native traces, and those condensed at level 3."""
    questions = [f"q{i} answer={i} shape=reasoning_content" for i in range(20)]
    problems = write_problems(tmp_path / "p.jsonl", questions)
    recipe = scripted_recipe(problems, scripted.url, granularities=[3], native=True, condensed=[3])
    report = build(recipe, tmp_path / "corpus")
    assert report.accepted == 60
    return tmp_path / "corpus"


def _settings(corpus: Path, student: Path | str, arms: list[str] | None, **changes) -> SweepSettings:
    training = {"max_steps": 1, **changes.pop("train", {})}
    # The scripted questions differ only in their numbers: near-variants all, so only identical ones are grouped.
    changes = {"arms": arms, "levels": None, "holdout": 0.25, "holdout_similarity": 1.0, "max_new_tokens": 4} | changes
    return settings(corpus, Path(student), training, **changes)


def test_named_arms_resolve_to_native_condensed_prompted_and_mixed_subsets(reasoning_corpus: Path) -> None:
    plan = plan_sweep(_settings(reasoning_corpus, "s", ARMS))
    arms = {arm.label: arm for arm in plan.arms}
    assert {label: (arm.kind, arm.subset, arm.level) for label, arm in arms.items()} == {
        "native": ("native", "scripted-native-cot", None),
        "condensed-g3": ("condensed", "scripted-condensed-g3-cot", None),
        "g3": ("prompted", "scripted-g3-cot", 3),
        "native-0.5+g3-0.5": ("mixture", "scripted-native-cot:0.5+scripted-g3-cot:0.5", None),
    }
    ids = [[r.problem_id for r in rows] for rows in plan.train.values()]
    assert all(i == ids[0] for i in ids) and len(ids[0]) == 15, "every arm trains on the same 15 problems"
    assert all(r.reasoning == TRACE for r in plan.train["native"])
    assert all(r.reasoning is None and r.granularity == 3 for r in plan.train["condensed-g3"])
    # The mixture deals the 20 shared problems half and half, so its training part mixes both.
    mixed = plan.train["native-0.5+g3-0.5"]
    modes = [r.format_mode.value for r in mixed]
    assert {"native", "direct"} == set(modes) and 5 <= modes.count("native") <= 10
    whole = plan_sweep(_settings(reasoning_corpus, "s", ["g3", "native:0.75+g3:0.25"], holdout=0.05))
    shares = [r.format_mode.value for r in whole.train["native-0.75+g3-0.25"]]
    assert len(shares) == 19 and 14 <= shares.count("native") <= 15, "15 of the 20 problems get the native trace"
    # At the default similarity the 20 templated questions are one family: no hold-out can keep it whole.
    with pytest.raises(SweepError, match="no group of near-variant questions fits"):
        plan_sweep(_settings(reasoning_corpus, "s", ARMS, holdout_similarity=0.8))


def test_the_default_axis_leaves_traced_subsets_to_named_arms(reasoning_corpus: Path) -> None:
    # Without --arm, level 3 is the prompted subset alone: its condensed namesake is not a second "g3" arm.
    with pytest.raises(SweepError, match="the corpus has 1 subset"):
        plan_sweep(_settings(reasoning_corpus, "s", None))


@pytest.mark.parametrize(
    ("arm", "phrase"),
    [
        ("g9", "'g9' is not an arm"),
        ("native+", "an empty part"),
        ("native:0+g3:1", "the weight of native must be a number above 0"),
        ("native:0.5+g3", "give every part of a mixture a weight, or none"),
        ("g3+g3", "names each part once"),
        ("cot", "'cot' is not an arm; give g<level>, native, condensed-g<level>"),
    ],
)
def test_a_malformed_arm_is_refused_naming_it(arm: str, phrase: str) -> None:
    with pytest.raises(SweepError, match="--arm ") as error:
        parse_arm(arm)
    assert phrase in str(error.value) and arm in str(error.value)


def test_an_arm_the_corpus_lacks_names_the_subset(reasoning_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="--arm condensed-g4: the corpus has no subset scripted-condensed-g4-cot"):
        plan_sweep(_settings(reasoning_corpus, "s", ["native", "condensed-g4"]))
    with pytest.raises(ValidationError, match="without --vary format/teacher or --levels"):
        _settings(reasoning_corpus, "s", ["native", "g3"], levels=[3])
    result = CliRunner().invoke(
        app, ["sweep", "--dataset", "x", "--student", "s", "--out", str(tmp_path / "o"), "--arm", "g3", "--arm", "zz"]
    )
    assert result.exit_code == 2 and "--arm zz: 'zz' is not an arm" in result.output


def test_the_cli_gives_thinking_students_a_trace_budget(
    reasoning_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cotforge.sweeps

    seen: list[SweepSettings] = []

    def capture(settings: SweepSettings, *args, **kwargs):
        seen.append(settings)
        raise SweepError("captured")

    monkeypatch.setattr(cotforge.sweeps, "run_sweep", capture)
    base = ["sweep", "--dataset", str(reasoning_corpus), "--student", "s", "--arm", "native", "--arm", "g3"]
    for extra in (["--reasoning", "keep"], ["--reasoning", "drop"], ["--reasoning", "keep", "--thinking-tokens", "64"]):
        result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "o"), *extra])
        assert result.exit_code == 2 and "captured" in result.output
    assert [(s.rendering.reasoning, s.thinking_tokens) for s in seen] == [
        (ReasoningView.keep, 1024),
        (ReasoningView.drop, 0),
        (ReasoningView.keep, 64),
    ]
    assert seen[0].arms == ["native", "g3"]


def test_a_sweep_over_native_and_mixed_arms_trains_on_the_trace_and_thinks(
    reasoning_corpus: Path, student: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cotforge.train.evaluate as evaluate

    budgets: list[tuple[int, int]] = []
    real = evaluate.evaluate_problems

    def recording(*args, **kwargs):
        budgets.append((kwargs["max_new_tokens"], kwargs["thinking_tokens"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_problems", recording)
    chosen = _settings(
        reasoning_corpus, student, ["native", "native:0.5+g3:0.5"], train={"reasoning": "keep"}, thinking_tokens=3
    )
    _, unfinished = run_sweep(chosen, tmp_path / "sweep", log=lambda _: None)
    assert unfinished == [] and budgets == [(4, 3), (4, 3)], "every cell is evaluated with the trace budget"
    cells = sorted((tmp_path / "sweep" / "cells").iterdir())
    native = next(c for c in cells if "--native--" in c.name)
    (rows,) = BuildDir(native / "data").read_subsets().values()
    assert all(r.reasoning == TRACE for r in rows), "the native arm's cell trains on the trace (keep)"
    from cotforge.sweeps import CellResult

    results = {r.arm: r for r in (CellResult.model_validate_json((c / "cell.json").read_text()) for c in cells)}
    assert results["native"].kind == "native" and results["native-0.5+g3-0.5"].kind == "mixture"
    # What the native student is shown counts the trace: more words than the answer line alone.
    assert results["native"].mean_rationale_words > len(TRACE.split())
    assert results["native"].total == 5
    report = build_report(tmp_path / "sweep")  # arms off the level axis: the report and its figure still hold them
    assert {a.arm for a in report.arms} == {"native", "native-0.5+g3-0.5"}
    assert (tmp_path / "sweep" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "| native-0.5+g3-0.5 |" in (tmp_path / "sweep" / "sweep_report.md").read_text()
