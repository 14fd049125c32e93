"""A build killed at any moment resumes with no duplicate and no lost answer, and never pays twice."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cotforge.builders.store import Store
from cotforge.schemas import CoTRecord

from .conftest import write_problems

N_PROBLEMS = 150


def recipe_file(tmp_path: Path, url: str, questions: list[str]) -> Path:
    problems = write_problems(tmp_path / "problems.jsonl", questions)
    recipe = {
        "name": "resume",
        "sources": [{"path": str(problems), "answer_type": "number"}],
        "teachers": [{"model": "scripted", "base_url": url, "max_concurrency": 4, "retry_backoff_s": 0.01}],
        "granularities": [1],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def start_build(recipe: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cotforge", "build", "--recipe", str(recipe), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored(out: Path) -> int:
    if not (out / "store.sqlite").exists():
        return 0
    with Store(out / "store.sqlite") as store:
        return store.count()


def assert_no_answer_bought_twice(out: Path, log) -> None:
    """No question was answered by the server after its answer had been committed."""
    with Store(out / "store.sqlite") as store:
        committed = store.stored_at()
        rows = list(store.rows())
    assert len(rows) == len({r.key for r in rows}) == N_PROBLEMS
    for row in rows:
        assert isinstance(row, CoTRecord)
        late = [e for e in log if e.message == row.question and e.status == 200 and e.arrived > committed[row.key]]
        assert not late, f"{row.question} answered again after its commit"


@pytest.mark.integration
def test_sigkill_at_random_moments_then_resume(tmp_path: Path, scripted) -> None:
    scripted.latency_s = 0.05
    recipe = recipe_file(tmp_path, scripted.url, [f"kill{i} answer=5" for i in range(N_PROBLEMS)])
    out = tmp_path / "out"
    rng = random.Random(20251124)
    partial = []
    for _ in range(5):
        process = start_build(recipe, out)
        before = stored(out)
        deadline = time.monotonic() + 30
        # Kill once this run has committed something, after a random extra moment.
        while stored(out) == before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        partial.append(stored(out))
        if partial[-1] == N_PROBLEMS:
            break
    assert any(0 < n < N_PROBLEMS for n in partial), partial
    assert partial == sorted(partial), "a killed run never loses committed answers"
    final = start_build(recipe, out)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    report = json.loads((out / "build_report.json").read_text())
    assert report["accepted"] == N_PROBLEMS and report["pending"] == 0
    assert_no_answer_bought_twice(out, scripted.log)


@pytest.mark.integration
def test_ctrl_c_stops_cleanly_and_resumes(tmp_path: Path, scripted) -> None:
    scripted.latency_s = 0.05
    recipe = recipe_file(tmp_path, scripted.url, [f"int{i} answer=5" for i in range(N_PROBLEMS)])
    out = tmp_path / "out"
    process = start_build(recipe, out)
    deadline = time.monotonic() + 30
    while stored(out) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "resume" in err and "Traceback" not in err
    report = json.loads((out / "build_report.json").read_text())
    assert report["stopped"] == "interrupted"
    assert 0 < report["accepted"] < N_PROBLEMS and report["pending"] == N_PROBLEMS - report["accepted"]
    final = start_build(recipe, out)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert_no_answer_bought_twice(out, scripted.log)
