from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cotforge.builders.teachers.openai_batch import split_batches
from cotforge.schemas import RejectionReason

from .helpers import scripted_recipe, write_problems
from .test_build import all_rows, build

BATCH = {"backend": "openai-batch", "batch_poll_s": 0.01}


def test_split_batches_by_count_and_bytes() -> None:
    lines = [(str(i), b"x" * 10) for i in range(7)]
    assert [len(c) for c in split_batches(lines, max_requests=3, max_bytes=10**6)] == [3, 3, 1]
    assert [len(c) for c in split_batches(lines, max_requests=100, max_bytes=25)] == [2, 2, 2, 1]
    assert split_batches([], 3, 10) == []


def test_batch_build_answers_everything(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", [f"b{i} answer=5" for i in range(6)])
    report = build(scripted_recipe(problems, scripted.url, teacher=BATCH, granularities=[1, 2]), tmp_path / "out")
    assert report.accepted == 12 and report.failed == 0
    assert len(scripted.batches) == 1 and len(scripted.files) == 2  # one input file, one output file
    assert all(e.path != "/v1/chat/completions" for e in scripted.log), "no synchronous requests"


def test_only_failed_and_expired_requests_are_resubmitted(tmp_path: Path, scripted) -> None:
    questions = ["fine answer=5", "late expire answer=5", "bad batchfail"]
    problems = write_problems(tmp_path / "p.jsonl", questions)
    report = build(scripted_recipe(problems, scripted.url, teacher={**BATCH, "max_retries": 2}), tmp_path / "out")
    assert report.accepted == 2 and report.failed == 1
    # batch 1: all three; batch 2: the expired and the failed one; batch 3: the failed one again.
    sizes = [len(b["lines"]) for b in scripted.batches.values()]
    assert sizes == [3, 2, 1]
    failed = next(r for r in all_rows(tmp_path / "out") if getattr(r, "reason", None) is RejectionReason.api_error)
    assert "scripted batch failure" in failed.detail


@pytest.mark.integration
def test_killed_batch_run_picks_its_batch_up_again(tmp_path: Path, scripted) -> None:
    scripted.batch_polls_until_done = 6
    problems = write_problems(tmp_path / "p.jsonl", [f"k{i} answer=5" for i in range(5)])
    recipe = {
        "sources": [{"path": str(problems), "answer_type": "number"}],
        "teachers": [{"model": "scripted", "base_url": scripted.url, "backend": "openai-batch", "batch_poll_s": 0.2}],
        "granularities": [1],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    command = [sys.executable, "-m", "cotforge", "build", "--recipe", str(path), "--out", str(tmp_path / "out")]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not scripted.batches and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert len(scripted.batches) == 1
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert len(scripted.batches) == 1, "the stored batch was polled again, not paid for twice"
    assert len(all_rows(tmp_path / "out")) == 5
