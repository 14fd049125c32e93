"""Bad input gets a sentence that names the field or file, an exit code that tells the truth, and no lost work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.recipes.sources import SourceError, load_problems
from cotforge.schemas import AnswerType, SourceSpec
from cotforge.schemas.recipe import OpenAITeacherSpec

from .helpers import recipe_yaml


def _source(path: Path, rows: list) -> SourceSpec:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return SourceSpec(path=str(path), answer_type=AnswerType.number)


def test_repeated_rows_are_merged_and_conflicts_left_out(tmp_path: Path) -> None:
    rows = [{"question": f"q{i}?", "answer": i} for i in range(20)]
    rows += [{"question": "q3?", "answer": 3}, {"question": "q4?", "answer": 4}, {"question": "q5?", "answer": 99}]
    loaded = load_problems(_source(tmp_path / "p.jsonl", rows))
    assert loaded.merged == 2
    assert len(loaded.problems) == 19 and "q5?" not in {p.question for p in loaded.problems}
    assert [index for index, _ in loaded.invalid] == [5, 22]
    assert all("conflict" in why for _, why in loaded.invalid)
    assert len({p.id for p in loaded.problems}) == len(loaded.problems)


@pytest.mark.parametrize(
    ("value", "why"),
    [([1, 2], "a list"), ({"x": 1}, "an object"), (None, "null")],
)
def test_wrong_typed_gold_is_refused_with_the_row(tmp_path: Path, value: object, why: str) -> None:
    loaded = load_problems(
        _source(tmp_path / "p.jsonl", [{"question": "a?", "answer": 1}, {"question": "b?", "answer": value}])
    )
    assert len(loaded.problems) == 1 and loaded.invalid[0][0] == 1 and why in loaded.invalid[0][1]


def test_null_question_is_refused(tmp_path: Path) -> None:
    loaded = load_problems(
        _source(tmp_path / "p.jsonl", [{"question": "a?", "answer": 1}, {"question": None, "answer": 2}])
    )
    assert [p.question for p in loaded.problems] == ["a?"] and "null" in loaded.invalid[0][1]


@pytest.mark.parametrize(("name", "text"), [("p.jsonl", "5\n"), ("p.jsonl", "[1, 2]\n"), ("p.json", "[1, 2, 3]")])
def test_rows_that_are_not_objects_name_the_file(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SourceError, match=name):
        load_problems(SourceSpec(path=str(path), answer_type=AnswerType.number))


def test_a_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes('{"question": "caf\u00e9?", "answer": 1}\n'.encode("latin-1"))
    with pytest.raises(SourceError, match="UTF-8"):
        load_problems(SourceSpec(path=str(path), answer_type=AnswerType.number))


@pytest.mark.parametrize("url", ["not a url", "ftp://host/v1", "http//x"])
def test_base_url_is_validated(url: str) -> None:
    with pytest.raises(ValidationError, match="http"):
        OpenAITeacherSpec(model="m", base_url=url)
    result = CliRunner().invoke(app, ["build", "-d", "svamp", "-t", "m", "--sample", "--base-url", url, "--dry-run"])
    assert result.exit_code == 2 and "http" in result.output and "Traceback" not in result.output


@pytest.mark.integration
def test_repeated_questions_build_once_and_resume_to_nothing(tmp_path: Path, scripted) -> None:
    from .helpers import scripted_recipe, write_problems
    from .test_build import all_rows, build

    questions = [f"q{i} answer=5" for i in range(20)]
    problems = write_problems(tmp_path / "p.jsonl", [*questions, questions[3], questions[4], questions[5]])
    recipe = scripted_recipe(problems, scripted.url, granularities=[1, 2])
    first = build(recipe, tmp_path / "b")
    assert first.requested == 40 and first.accepted == 40 and first.pending == 0
    keys = [row.key for row in all_rows(tmp_path / "b")]
    assert len(keys) == len(set(keys)) == 40
    sent = len(scripted.answered())
    again = build(recipe, tmp_path / "b")
    assert (again.accepted, again.pending, len(scripted.answered())) == (40, 0, sent)
    assert sent == 40  # each distinct answer paid once


@pytest.mark.integration
def test_a_refused_key_stops_the_build_after_a_few_requests(tmp_path: Path, scripted) -> None:
    from .helpers import scripted_recipe, write_problems

    refused = ",".join(["401"] * 10)
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5 fault={refused}" for i in range(30)])
    recipe = scripted_recipe(problems, scripted.url, teacher={"max_concurrency": 1})
    result = CliRunner().invoke(
        app, ["build", "--recipe", str(recipe_yaml(tmp_path / "r.yaml", recipe)), "-o", str(tmp_path)]
    )
    assert result.exit_code == 3, result.output
    assert len(scripted.log) == 3, "three refusals in a row, then nothing more is sent"
    assert "3 requests in a row failed with: HTTP 401" in result.output
    assert "failed 3x: HTTP 401: Incorrect API key provided: ***" in result.output
    report = json.loads((tmp_path / "build_report.json").read_text())
    assert report["failed"] == 3 and report["pending"] == 27
    assert report["failures"] == {"HTTP 401: Incorrect API key provided: ***": 3}


@pytest.mark.integration
def test_an_unreachable_server_stops_the_build_early(tmp_path: Path) -> None:
    import socket

    from .helpers import scripted_recipe, write_problems

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(50)])
    recipe = scripted_recipe(problems, f"http://127.0.0.1:{port}/v1", teacher={"max_concurrency": 4, "max_retries": 6})
    result = CliRunner().invoke(
        app, ["build", "--recipe", str(recipe_yaml(tmp_path / "r.yaml", recipe)), "-o", str(tmp_path)]
    )
    assert result.exit_code == 3, result.output
    assert "cannot connect to http://127.0.0.1" in result.output and "in a row failed" in result.output
    report = json.loads((tmp_path / "build_report.json").read_text())
    # Each failure tried 3 times (not max_retries + 1 = 7); the build stopped long before asking for all 50.
    assert report["pending"] >= 40 and report["requests_sent"] <= 3 * 10


@pytest.mark.integration
def test_timeouts_on_a_single_slot_server_lower_the_requests_in_flight(tmp_path: Path) -> None:
    from cotforge.builders.build import run_build
    from cotforge.recipes.sources import load_sources

    from .helpers import scripted_recipe, write_problems
    from .scripted_server import ScriptedServer

    server = ScriptedServer(slots=1, latency_s=0.15).start()
    try:
        problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(24)])
        recipe = scripted_recipe(
            problems, server.url, teacher={"max_concurrency": 16, "timeout_s": 1.0, "max_retries": 8}
        )
        report = run_build(recipe, load_sources(recipe, sample=False), tmp_path / "out")
    finally:
        server.stop()
    assert report.accepted == 24 and report.failed == 0
    # 16 in flight against one slot: with a fixed window, 18 of 24 answers failed after 168 requests (measured);
    # halving the window on timeouts answers all of them with about 54.
    assert len(server.log) < 24 * 3, len(server.log)


def test_adaptive_concurrency_halves_once_per_burst_and_grows_back() -> None:
    import asyncio

    from cotforge.builders.teachers.ratelimit import AdaptiveConcurrency

    async def scenario() -> AdaptiveConcurrency:
        window = AdaptiveConcurrency(16)
        starts = [await window.acquire() for _ in range(8)]
        for started in starts:  # eight requests of one burst time out: one cut, not eight
            await window.release(started, timed_out=True)
        assert window.limit == 8 and window.cuts == 1
        later = await window.acquire()
        await window.release(later, timed_out=True)  # sent after the cut: cut again
        assert window.limit == 4 and window.cuts == 2
        for _ in range(40):
            await window.release(await window.acquire(), timed_out=False)
        return window

    window = asyncio.run(scenario())
    assert 8 <= window.limit <= 16


def test_recipe_with_a_repeated_key_or_not_utf8_is_refused(tmp_path: Path) -> None:
    repeated = tmp_path / "r.yaml"
    repeated.write_text("sources: [svamp]\nteachers: [gpt-4o]\ngranularities: [1]\ngranularities: [5]\n")
    result = CliRunner().invoke(app, ["build", "--recipe", str(repeated), "--dry-run", "--sample"])
    assert result.exit_code == 2 and "line 4" in result.output and "'granularities' is given twice" in result.output
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("description: caf\u00e9\nsources: [svamp]\nteachers: [gpt-4o]\n".encode("latin-1"))
    result = CliRunner().invoke(app, ["build", "--recipe", str(latin), "--dry-run", "--sample"])
    assert result.exit_code == 2 and "not UTF-8" in result.output and "Traceback" not in result.output


def test_a_vllm_teacher_without_vllm_is_a_sentence(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    result = CliRunner().invoke(
        app, ["build", "-d", "svamp", "-t", "vllm:some/model", "--sample", "--limit", "1", "-o", str(tmp_path / "b")]
    )
    assert result.exit_code == 2 and "cannot be imported" in result.output and "cotforge[vllm]" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_train_eval_export_errors_are_sentences(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--dataset", str(tmp_path), "--model", "x", "--batching", "weird"])
    assert result.exit_code == 2 and "invalid option" in result.output and "batching" in result.output
    result = runner.invoke(app, ["train", "--dataset", str(tmp_path / "none"), "--model", "x"])
    assert result.exit_code == 2 and "--dataset" in result.output
    result = runner.invoke(app, ["eval", "--model", str(tmp_path / "none"), "--benchmark", "svamp", "--sample"])
    assert result.exit_code == 2 and "no such folder" in result.output
    target = tmp_path / "exported"
    result = runner.invoke(app, ["export", str(tmp_path), "-f", "trl-messages", "-o", str(target)])
    assert result.exit_code == 2 and "not a build directory" in result.output
    assert not target.exists(), "a failed export leaves no empty folder"


@pytest.mark.integration
def test_an_unreachable_batch_api_is_a_failure_with_its_reason(tmp_path: Path, monkeypatch) -> None:
    from .helpers import scripted_recipe, write_problems

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key-000000")
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(3)])
    recipe = scripted_recipe(problems, "http://127.0.0.1:1/v1", teacher={"backend": "openai-batch", "max_retries": 0})
    result = CliRunner().invoke(
        app, ["build", "--recipe", str(recipe_yaml(tmp_path / "r.yaml", recipe)), "-o", str(tmp_path)]
    )
    assert result.exit_code == 3, result.output
    assert "failed 3x: Batch API: APIConnectionError" in result.output and "sk-test" not in result.output
