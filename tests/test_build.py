from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from cotforge.builders.build import run_build
from cotforge.builders.store import Store
from cotforge.cli.progress import BuildDisplay
from cotforge.corpus import BuildDir
from cotforge.recipes.sources import load_sources
from cotforge.recipes.sources.builtin import content_id
from cotforge.schemas import BuildReport, CoTRecord, Rejection, RejectionReason
from cotforge.schemas.tables import read_parquet

from .helpers import scripted_recipe, write_problems


def build(recipe, out: Path, extend: bool = False) -> BuildReport:
    return run_build(recipe, load_sources(recipe, sample=False), out, extend=extend)


def all_rows(out: Path) -> list[CoTRecord | Rejection]:
    with Store(out / "store.sqlite") as store:
        return list(store.rows())


FAULTS = {
    "plain answer=5": ("record", True),
    "wrong answer=6": ("record", False),
    "rate answer=5 fault=429,429": ("record", True),
    "server answer=5 fault=500,503": ("record", True),
    "dropped answer=5 fault=drop": ("record", True),
    "slow answer=5 fault=timeout": ("record", True),
    "garbled answer=5 fault=malformed": ("record", True),
    "cut fault=length": (RejectionReason.truncated, None),
    "refused fault=refusal": (RejectionReason.refusal, None),
    "blank fault=empty": (RejectionReason.empty, None),
    "rambling fault=noanswer": (RejectionReason.unparseable, None),
    "denied fault=401": (RejectionReason.api_error, None),
    "broken fault=500,500,500,500,500": (RejectionReason.api_error, None),
}


def test_every_fault_ends_as_a_record_or_a_rejection(tmp_path: Path, scripted) -> None:
    scripted.timeout_sleep_s = 3.0
    problems = write_problems(tmp_path / "p.jsonl", list(FAULTS))
    report = build(scripted_recipe(problems, scripted.url, teacher={"timeout_s": 0.5}), tmp_path / "out")
    assert report.requested == len(FAULTS)
    assert report.requested == report.accepted + sum(report.rejected.values()) + report.failed + report.pending
    assert report.pending == 0
    rows = {row.problem_id: row for row in all_rows(tmp_path / "out")}
    assert len(rows) == len(FAULTS)
    for question, (kind, correct) in FAULTS.items():
        row = rows[content_id("p", "train", question)]
        if kind == "record":
            assert isinstance(row, CoTRecord), (question, row)
            assert row.correct is correct
        else:
            assert isinstance(row, Rejection) and row.reason is kind, (question, row)
    retried = {q: sum(e.message == q for e in scripted.log) for q in FAULTS}
    assert retried["rate answer=5 fault=429,429"] == 3
    assert retried["denied fault=401"] == 1, "a 401 is not retried"
    assert retried["broken fault=500,500,500,500,500"] == 4, "max_retries=3: four attempts, then failed"
    report_file = json.loads(BuildDir(tmp_path / "out").report_path.read_text())
    assert report_file["failed"] == 2 and report_file["rejected"]["truncated"] == 1


def test_rejections_keep_reason_and_raw_response(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["cut fault=length", "rambling fault=noanswer"])
    build(scripted_recipe(problems, scripted.url), tmp_path / "out")
    rejections = read_parquet(tmp_path / "out" / "rejections.parquet", Rejection)
    by_reason = {r.reason: r for r in rejections}
    assert by_reason[RejectionReason.truncated].raw_response == "We work it out step"
    assert by_reason[RejectionReason.truncated].finish_reason == "length"
    assert by_reason[RejectionReason.unparseable].raw_response == "I am not sure how to solve this."


def test_keep_correct_rejects_wrong_answers(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["right answer=5", "wrong answer=7"])
    report = build(scripted_recipe(problems, scripted.url, keep="correct"), tmp_path / "out")
    assert report.accepted == 1 and report.rejected == {RejectionReason.wrong_answer: 1}


def test_rerun_of_a_finished_build_sends_nothing(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(12)])
    recipe = scripted_recipe(problems, scripted.url, granularities=[1, 3])
    first = build(recipe, tmp_path / "out")
    sent = len(scripted.log)
    assert first.accepted == 24 and sent == 24
    outputs = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix in {".parquet", ".json"})
    written = {p: p.stat().st_mtime_ns for p in outputs}
    again = build(recipe, tmp_path / "out")
    assert len(scripted.log) == sent, "a finished build sends zero requests"
    assert again.accepted == 24 and again.last_run is not None and again.last_run.requests_sent == 0
    # Nothing changed, so nothing is rewritten and the idle run leaves no trace: the report on disk is the first
    # (the outputs: two subsets, the rejections, the report and cotforge_stats.json).
    assert len(outputs) == 5 and {p: p.stat().st_mtime_ns for p in outputs} == written
    assert again.runs == 1 and again.requests_sent == first.requests_sent == 24 and again.last_run.stored == 0
    assert BuildDir(tmp_path / "out").read_report() == first
    subsets = sorted(p.name for p in (tmp_path / "out" / "subsets").iterdir())
    assert subsets == ["scripted-g1-cot.parquet", "scripted-g3-cot.parquet"]
    frame = pl.read_parquet(tmp_path / "out" / "subsets" / "scripted-g3-cot.parquet")
    assert frame.height == 12 and frame["key"].n_unique() == 12


def test_failures_are_retried_on_the_next_run(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["flaky answer=5 fault=503,503,503,503,503"])
    recipe = scripted_recipe(problems, scripted.url)
    assert build(recipe, tmp_path / "out").failed == 1
    report = build(recipe, tmp_path / "out")  # the fifth attempt fails, the sixth succeeds
    assert (report.accepted, report.failed) == (1, 0)
    assert len(all_rows(tmp_path / "out")) == 1


def test_several_answers_per_prompt(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["multi answer=5"])
    report = build(scripted_recipe(problems, scripted.url, sampling={"n": 3}), tmp_path / "out")
    assert report.accepted == 3
    assert len(scripted.log) == 1, "one request with n=3"
    rows = all_rows(tmp_path / "out")
    assert sorted(r.sample_index for r in rows) == [0, 1, 2] and len({r.key for r in rows}) == 3


def test_budget_stops_sending_and_resumes(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(30)])
    priced = {"input_price_per_mtok": 1000.0, "output_price_per_mtok": 1000.0, "max_concurrency": 1}
    recipe = scripted_recipe(problems, scripted.url, teacher=priced, max_cost_usd=0.5)
    report = build(recipe, tmp_path / "out")
    assert report.stopped and "budget" in report.stopped
    assert 0 < report.accepted < 30 and report.pending == 30 - report.accepted
    assert report.cost_usd >= 0.5
    finished = build(scripted_recipe(problems, scripted.url, teacher=priced), tmp_path / "out")
    assert finished.accepted == 30 and finished.pending == 0


def test_rewrite_mode_sends_the_plain_cot(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["bananas answer=5", "apples fault=length"])
    recipe = scripted_recipe(problems, scripted.url, formats=["cot", "subquestions"], format_mode="rewrite")
    report = build(recipe, tmp_path / "out")
    assert report.subsets == {"scripted-g2-cot": 1, "scripted-g2-subquestions": 1}
    assert report.rejected == {RejectionReason.truncated: 1, RejectionReason.no_plain_cot: 1}
    rewrites = [e.message for e in scripted.log if e.message.startswith("Question: bananas")]
    assert rewrites and "The answer is 5" in rewrites[0]


def test_api_key_never_leaks(tmp_path: Path, scripted, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    secret = "sk-cotforge-test-0123456789abcdefSECRET"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    scripted.echo_auth = True  # the server quotes the Authorization header in its 401, as OpenAI's does in part
    problems = write_problems(tmp_path / "p.jsonl", ["ok answer=5", "denied fault=401", "cut fault=length"])
    out = tmp_path / "out"
    console = Console(file=(tmp_path / "log.txt").open("w"), force_terminal=False)
    run_build(
        scripted_recipe(problems, scripted.url),
        load_sources(scripted_recipe(problems, scripted.url), False),
        out,
        progress=BuildDisplay(console),
    )
    console.file.close()
    assert "cot-build: 3/3 |" in (tmp_path / "log.txt").read_text(), "the display's last line: every answer in"
    assert any("Bearer" in e for e in scripted.auth_seen), "the key was sent to the server"
    denied = next(r for r in all_rows(out) if isinstance(r, Rejection) and r.reason is RejectionReason.api_error)
    assert "Incorrect API key" in denied.detail
    for path in [*out.rglob("*"), tmp_path / "log.txt"]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
            assert b"0123456789abcdef" not in path.read_bytes(), path
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err


def test_missing_api_key_fails_before_anything_starts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cotforge.cli import app

    result = CliRunner().invoke(
        app, ["build", "--sample", "-d", "svamp", "-t", "gpt-4o", "--limit", "1", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output
    assert not (tmp_path / "o" / "store.sqlite").exists()


def test_progress_reaches_the_callback_and_ends_with_a_finished_call(tmp_path: Path, scripted) -> None:
    from cotforge.builders.progress import BuildProgress

    problems = write_problems(tmp_path / "p.jsonl", ["one answer=5", "two answer=5"])
    recipe = scripted_recipe(problems, scripted.url)
    seen: list[BuildProgress] = []
    run_build(recipe, load_sources(recipe), tmp_path / "out", progress=seen.append)
    assert seen and seen[-1].finished and (seen[-1].done, seen[-1].total, seen[-1].accepted) == (2, 2, 2)
    assert not any(s.finished for s in seen[:-1])
