"""A build killed at any moment resumes with no duplicate and no lost answer, and never pays twice."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from cotforge.builders.store import Store
from cotforge.schemas import CoTRecord

from .helpers import write_problems

N_PROBLEMS = 150


def recipe_file(tmp_path: Path, url: str, questions: list[str], levels: tuple[int, ...] = (1,)) -> Path:
    problems = write_problems(tmp_path / "problems.jsonl", questions)
    recipe = {
        "name": "resume",
        "sources": [{"path": str(problems), "answer_type": "number"}],
        "teachers": [{"model": "scripted", "base_url": url, "max_concurrency": 4, "retry_backoff_s": 0.01}],
        "granularities": list(levels),
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


def kill_once_grown(
    recipe: Path, out: Path, count: Callable[[Path], int], rng: random.Random, most_s: float
) -> tuple[subprocess.Popen, signal.Signals, str]:
    """A build started and killed (SIGKILL, SIGTERM or Ctrl-C) once `count(out)` has grown in this run, after a
    random extra moment of at most `most_s`; the process, the signal and its stderr."""
    process = start_build(recipe, out)
    before = count(out)
    deadline = time.monotonic() + 30
    while count(out) == before and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, most_s))
    how = rng.choice([signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
    process.send_signal(how)
    _, err = process.communicate(timeout=60)
    return process, how, err


def assert_no_answer_bought_twice(out: Path, log, expected: int = N_PROBLEMS) -> None:
    """Each answer stored once, and no prompt answered by the server after its answer had been committed: a prompt
    answered twice was in flight when a run was killed, its first answer never committed."""
    with Store(out / "store.sqlite") as store:
        committed = dict(store.db.execute("SELECT key, stored_at FROM answers"))  # unix time of each commit
        rows = list(store.rows())
    assert len(rows) == len({r.key for r in rows}) == expected
    for row in rows:
        assert isinstance(row, CoTRecord)
        chat = json.dumps([m.model_dump() for m in row.messages_sent], sort_keys=True)  # levels share a question
        paid = [e for e in log if e.chat == chat and e.status == 200]
        assert paid, f"{row.question}: no request of the log matches the stored prompt"
        late = [e for e in paid if e.arrived > committed[row.key]]
        assert not late, f"{row.question} answered again after its commit"


@pytest.mark.integration
def test_kill_loop_each_answer_once_and_never_paid_after_its_commit(tmp_path: Path, scripted) -> None:
    """The property, over random kills: SIGKILL, SIGTERM or Ctrl-C at a random moment, N times, with repeated
    questions in the data; then a resume finishes the build."""
    scripted.latency_s = 0.05
    distinct = [f"kill{i} answer=5" for i in range(N_PROBLEMS // 2)]
    repeated = distinct + distinct[:10]  # merged at load: each distinct question is one problem
    levels = (1, 2)
    expected = len(distinct) * len(levels)
    recipe = recipe_file(tmp_path, scripted.url, repeated, levels)
    out = tmp_path / "out"
    rng = random.Random(20251124)
    partial, kills = [], 0
    for _ in range(6):
        process, how, err = kill_once_grown(recipe, out, stored, rng, 0.5)
        kills += 1
        if how is not signal.SIGKILL and process.returncode != 0:
            assert process.returncode == 130 and "Traceback" not in err, err
        partial.append(stored(out))
        if partial[-1] == expected:
            break
    assert any(0 < n < expected for n in partial), partial
    assert partial == sorted(partial), "a killed run never loses committed answers"
    final = start_build(recipe, out)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    report = json.loads((out / "build_report.json").read_text())
    assert report["accepted"] == expected and report["pending"] == 0 and report["runs"] == kills + 1
    assert_no_answer_bought_twice(out, scripted.log, expected)
    paid = sum(e.status == 200 for e in scripted.log)
    assert paid <= expected + kills * 4, "at most the requests in flight (4) are paid twice per kill"


@pytest.mark.integration
def test_concurrent_writers_on_one_directory_pay_each_answer_once(tmp_path: Path, scripted) -> None:
    """The property, over random start times: N runs of the recipe on one directory, and one run of another recipe,
    started at random moments; one run builds at a time (the others exit 2 at once, naming the holder, or find the
    work done), the other recipe's run asks nothing, and every answer is paid exactly once."""
    scripted.latency_s = 0.05  # a build takes about two seconds: the runs overlap
    questions = [f"twice{i} answer=5" for i in range(N_PROBLEMS)]
    recipe = recipe_file(tmp_path, scripted.url, questions)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = recipe_file(other_dir, scripted.url, [f"other{i} answer=5" for i in range(10)])
    out = tmp_path / "out"
    rng = random.Random(20251202)
    refused = 0
    for _ in range(2):  # two rounds: the second starts on a directory that may already be done
        starts = [*((rng.uniform(0.0, 1.5), recipe) for _ in range(4)), (rng.uniform(0.0, 1.5), other)]
        began = time.monotonic()
        runs = []
        for at, which in sorted(starts, key=lambda item: item[0]):
            time.sleep(max(0.0, at - (time.monotonic() - began)))
            runs.append((which, start_build(which, out)))
        pids = {process.pid for _, process in runs}
        for which, process in runs:
            _, err = process.communicate(timeout=180)
            assert "Traceback" not in err, err
            if which is other:
                assert process.returncode == 2 and ("in use by process" in err or "another recipe" in err), err
            elif process.returncode == 2:
                holder = int(err.split("in use by process ")[1].split()[0])
                assert holder in pids - {process.pid}, err
                refused += 1
            else:
                assert process.returncode == 0, err
    assert refused, "the runs overlapped: some were refused"
    assert not [e for e in scripted.log if "other" in e.message], "the other recipe's run asked nothing"
    report = json.loads((out / "build_report.json").read_text())
    assert report["accepted"] == N_PROBLEMS and report["complete"]
    assert_no_answer_bought_twice(out, scripted.log)
    assert sum(e.status == 200 for e in scripted.log) == N_PROBLEMS, "each answer paid once"


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


def _reference_key(problem, teacher, recipe, granularity, fmt, version, sample) -> str:
    """The key as every store so far has it: the JSON of what is asked, hashed (a resume must find old answers)."""
    import hashlib

    payload = {
        "problem": [problem.dataset, problem.split, problem.id, problem.question, problem.answer],
        "teacher": [teacher.backend, teacher.model, getattr(teacher, "base_url", None)],  # vllm: no server
        "sampling": recipe.sampling.model_dump(mode="json", exclude={"n"}),
        "granularity": granularity,
        "format": fmt.value,
        "format_mode": recipe.format_mode.value,
        "prompt_version": version,
        "sample": sample,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


@pytest.mark.parametrize(
    "question, model, base_url",
    [
        ("Tom has 3 apples.", "gpt-4o", None),
        ('Ünïcode "quotes" \\ back\nslash, 日本語 ✓', "Qwen/Qwen2.5-7B-Instruct", "http://127.0.0.1:8000/v1"),
        ("", "m", None),
    ],
)
def test_planned_keys_equal_the_reference_keys(question: str, model: str, base_url: str | None) -> None:
    """The plan makes each key from JSON made once per (teacher, level, format); it must give every key that the
    full serialisation gives, or a resume would ask again for answers it has."""
    from cotforge.builders.plan import plan_jobs
    from cotforge.recipes.sources import LoadedSource
    from cotforge.schemas import Recipe
    from cotforge.schemas.problem import AnswerType, Problem

    recipe = Recipe.model_validate(
        {
            "name": "keys",
            "sources": [{"dataset": "svamp"}],
            "teachers": [{"model": model, "base_url": base_url}, {"model": "vllm-model", "backend": "vllm"}],
            "granularities": [0, 1, 6],
            "formats": ["cot", "symbolic"],
            "sampling": {"n": 3, "temperature": 0.3, "seed": 11},
        }
    )
    problems = [
        Problem(dataset="svamp", split="test", id=f"p{i}", question=question + str(i), answer=str(i),
                answer_type=AnswerType.number)
        for i in range(3)
    ]  # fmt: skip
    jobs = list(plan_jobs(recipe, [LoadedSource.of("svamp", problems)]))
    assert len(jobs) == 3 * 2 * 5
    for job in jobs:
        expected = [_reference_key(job.problem, job.teacher, recipe, job.granularity, job.fmt, job.prompt_version, i)
                    for i in range(3)]  # fmt: skip
        assert list(job.keys) == expected
    assert len({key for job in jobs for key in job.keys}) == 3 * 2 * 5 * 3
