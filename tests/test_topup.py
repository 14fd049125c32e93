"""Top-up sampling (until_correct, max_attempts) against the scripted server, whose `answers=X,Y,Z` answers each
attempt by its seed: attempts stop at K correct and at N, a killed build resumes paying for no attempt twice, and
the report, the dry run and the recipe say what was reached."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cotforge.api import build
from cotforge.builders.store import Store
from cotforge.builders.topup import expected_attempts
from cotforge.cli import app
from cotforge.corpus import BuildDir
from cotforge.dataset_cards.card import render_card
from cotforge.recipes.identity import identity
from cotforge.schemas import CoTRecord, Recipe
from cotforge.schemas.record import Coverage

from .helpers import recipe_yaml, scripted_recipe, write_problems


def paid(scripted, question: str) -> list[int]:
    """The seeds of the answered requests for `question`, in order."""
    return [e.params.get("seed") for e in scripted.answered() if question in e.message]


def test_attempts_stop_at_k_correct_and_at_most_n(tmp_path: Path, scripted) -> None:
    questions = ["first answers=5", "second answers=3,5,5", "never answers=3", "twice answers=5,3,5,5,5"]
    problems = write_problems(tmp_path / "p.jsonl", questions)
    recipe = scripted_recipe(problems, scripted.url, until_correct=1, max_attempts=3, keep="correct")
    report = build(recipe, tmp_path / "out").report
    assert paid(scripted, "first") == [0]
    assert paid(scripted, "second") == [0, 1], "asked again after a wrong answer, then stopped at one correct"
    assert paid(scripted, "never") == [0, 1, 2], "at most max_attempts"
    assert report.complete and report.accepted == 3 and report.rejected == {"wrong_answer": 4}
    assert report.requested == 7, "the attempts asked, not max_attempts of each prompt"
    assert report.coverage is not None
    assert (report.coverage.prompts, report.coverage.covered, report.coverage.none_correct) == (4, 3, 1)
    assert report.coverage.attempts == {1: 2, 2: 1, 3: 1}

    two = scripted_recipe(problems, scripted.url, until_correct=2, max_attempts=5, keep="correct")
    report = build(two, tmp_path / "two").report
    assert paid(scripted, "twice")[1:] == [0, 1, 2], "two correct after three attempts: no fourth"
    with Store(BuildDir(tmp_path / "two").store_path) as store:
        kept = [r for r in store.rows() if isinstance(r, CoTRecord) and r.question.startswith("twice")]
    assert [r.sample_index for r in kept] == [0, 2], "keep: correct keeps the first K correct"
    assert [r.sampling.seed for r in kept] == [0, 2], "each attempt's seed is recorded"
    assert report.coverage is not None and (report.coverage.covered, report.coverage.none_correct) == (3, 1)
    assert report.coverage.attempts == {2: 1, 3: 2, 5: 1}, "first: 5, 5; second: 3, 5, 5; never: five; twice"


def test_card_tells_the_coverage() -> None:
    coverage = Coverage(
        until_correct=1, max_attempts=4, prompts=10, covered=6, some_correct=6, none_correct=4, attempts={1: 3, 4: 7}
    )
    card = render_card("me/x", [], coverage=coverage)
    assert "asked until 1 correct, at most 4 times: of 10 prompts, 6 reached 1 correct" in card
    assert "attempts per prompt: 3 after 1, 7 after 4" in card
    assert "top-up" not in render_card("me/x", [])


def test_report_coverage_with_keep_all_counts_wrong_records(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["a answers=3,3,3,5", "b answers=3"])
    recipe = scripted_recipe(problems, scripted.url, until_correct=1, max_attempts=4)
    report = build(recipe, tmp_path / "out").report
    assert report.accepted == 8 and report.complete, "keep: all keeps every attempt, each with its correct flag"
    assert report.coverage is not None
    assert (report.coverage.covered, report.coverage.some_correct, report.coverage.none_correct) == (1, 1, 1)
    assert report.coverage.attempts == {4: 2}


@pytest.mark.integration
def test_killed_top_up_build_resumes_and_pays_no_attempt_twice(tmp_path: Path, scripted) -> None:
    scripted.latency_s = 0.02
    questions = [f"q{i} answers=3,3,5" for i in range(40)]
    problems = write_problems(tmp_path / "p.jsonl", questions)
    recipe = scripted_recipe(
        problems, scripted.url, until_correct=1, max_attempts=4, keep="correct", teacher={"max_concurrency": 4}
    )
    path = recipe_yaml(tmp_path / "recipe.yaml", recipe)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cotforge", "build", "--recipe", str(path), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(scripted.answered()) < 50:  # in round 1 of 3
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = len(scripted.answered())
    assert 0 < killed_at < 120, "killed mid-way"
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = BuildDir(out).read_report()
    assert report.accepted == 40 and report.rejected == {"wrong_answer": 80} and report.pending == 0
    assert report.coverage is not None and report.coverage.attempts == {3: 40} and report.runs == 2
    with Store(BuildDir(out).store_path) as store:
        assert store.count() == 120
    seeds = {question: paid(scripted, question.split()[0] + " ") for question in questions}
    assert all(set(found) == {0, 1, 2} for found in seeds.values()), "attempts 0, 1 and 2 of each, no fourth"
    twice = sum(len(found) - 3 for found in seeds.values())
    assert twice <= 4, "only the requests in flight at the kill (4) are paid twice"


BATCH = {"backend": "openai-batch", "batch_poll_s": 0.01}


def test_batch_api_sends_a_batch_a_round(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["a answers=3,5", "b answers=5", "c answers=3"])
    recipe = scripted_recipe(problems, scripted.url, teacher=BATCH, until_correct=1, max_attempts=3, keep="correct")
    report = build(recipe, tmp_path / "out").report
    assert [len(b["lines"]) for b in scripted.batches.values()] == [3, 2, 1], "round 2 asks a and c, round 3 c"
    assert report.complete and report.accepted == 2 and report.rejected == {"wrong_answer": 4}


@pytest.mark.integration
def test_killed_batch_top_up_picks_its_round_up_again(tmp_path: Path, scripted) -> None:
    scripted.batch_polls_until_done = 6
    problems = write_problems(tmp_path / "p.jsonl", ["a answers=3,5", "b answers=5", "c answers=3"])
    teacher = {**BATCH, "batch_poll_s": 0.2}
    recipe = scripted_recipe(problems, scripted.url, teacher=teacher, until_correct=1, max_attempts=3)
    path = recipe_yaml(tmp_path / "recipe.yaml", recipe)
    command = [sys.executable, "-m", "cotforge", "build", "--recipe", str(path), "--out", str(tmp_path / "out")]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(scripted.batches) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # the batch is recorded in the store once created
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert len(scripted.batches) == 2, "killed with round 2's batch open"
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert [len(b["lines"]) for b in scripted.batches.values()] == [3, 2, 1], "round 2's batch polled, not paid again"


def test_dry_run_estimates_attempts_from_a_pass_rate_or_the_store(tmp_path: Path, scripted) -> None:
    assert expected_attempts(1.0, 2, 5) == 2 and expected_attempts(0.0, 1, 4) == 4
    assert expected_attempts(0.5, 1, 4) == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    problems = write_problems(tmp_path / "p.jsonl", ["a answers=3,5", "b answers=5"])
    recipe = recipe_yaml(tmp_path / "r.yaml", scripted_recipe(problems, scripted.url))
    out = tmp_path / "out"
    flags = ["build", "--recipe", str(recipe), "--out", str(out), "--until-correct", "1", "--max-attempts", "4"]
    runner = CliRunner()
    guessed = runner.invoke(app, [*flags, "--dry-run", "--pass-rate", "0.5"], env={"COLUMNS": "250"})
    assert guessed.exit_code == 0, guessed.output
    assert "expected 1.88 a prompt, 4 in all" in guessed.output and not scripted.answered()
    built = runner.invoke(app, flags, env={"COLUMNS": "250"})
    assert built.exit_code == 0 and "top-up: 2 of 2 prompts reached 1 correct, 2 at least one, 0 none" in built.output
    stored = runner.invoke(app, [*flags, "--dry-run"], env={"COLUMNS": "250"})
    # 3 answers stored, 2 correct
    assert "expected 1.48 a prompt, 3 in all, at a pass rate of 0.67 (the answers stored)" in stored.output


def test_recipe_fields_leave_other_recipes_alone_and_refuse_what_top_up_cannot_do(tmp_path: Path) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["a"])
    plain = scripted_recipe(problems, "http://127.0.0.1:1/v1")
    assert "until_correct" not in identity(plain) and "max_attempts" not in identity(plain)
    topped = scripted_recipe(problems, "http://127.0.0.1:1/v1", until_correct=1, max_attempts=2)
    assert identity(topped) != identity(plain)
    base = plain.model_dump(mode="json")
    for changes, said in (
        ({"max_attempts": 3}, "max_attempts: set until_correct too"),
        ({"until_correct": 2}, "give max_attempts, at least until_correct"),
        ({"until_correct": 2, "max_attempts": 1}, "give max_attempts, at least until_correct"),
        ({"until_correct": 1, "max_attempts": 2, "sampling": {"n": 2}}, "leave sampling.n at 1"),
        ({"until_correct": 1, "max_attempts": 2, "keep": "majority"}, "not with keep: majority"),
    ):
        with pytest.raises(ValueError, match=said):
            Recipe.model_validate(base | changes)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(base | {"max_attempts": 3}))
    refused = CliRunner().invoke(app, ["build", "--recipe", str(path), "--dry-run"])
    assert refused.exit_code == 2 and "max_attempts: set until_correct too" in refused.output
