"""A build with a judge judges each accepted answer as it stores it: verdicts arrive while the teacher still
answers, the progress shows them, and a build killed at any moment resumes with the verdicts it paid for."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
from pathlib import Path

import pytest

import cotforge
from cotforge.builders.progress import BuildProgress
from cotforge.builders.store import Store

from .helpers import recipe_yaml, scripted_recipe, write_problems
from .test_resume import kill_once_grown, start_build, stored


def _judge(url: str, concurrency: int = 2) -> dict:
    teacher = {"model": "judge", "base_url": url, "max_concurrency": concurrency, "retry_backoff_s": 0.01}
    return {"teacher": teacher, "rubrics": ["faithful"]}


def _commits(path: Path, query: str) -> list[tuple[str, float]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return list(db.execute(query))
        except sqlite3.OperationalError:  # the table is not made yet
            return []


def _verdicts(out: Path) -> dict[str, float]:
    """Each judged record's key and the unix time its verdict was committed."""
    query = "SELECT key, stored_at FROM judgements WHERE kind != 'failed'"
    return dict(_commits(out / "judge.sqlite", query))


def test_each_answer_is_judged_while_the_teacher_still_answers(tmp_path: Path, scripted) -> None:
    scripted.latency_s = 0.03
    questions = [f"Q{i} answer=5 verdict={3 + i % 2}" for i in range(12)]
    recipe = scripted_recipe(
        write_problems(tmp_path / "p.jsonl", questions),
        scripted.url,
        teacher={"max_concurrency": 1},
        judge=_judge(scripted.url),
    )
    seen: list[BuildProgress] = []
    corpus = cotforge.build(recipe, tmp_path / "out", progress=seen.append)
    answered = [
        stored for _, stored in _commits(tmp_path / "out" / "store.sqlite", "SELECT key, stored_at FROM answers")
    ]
    verdicts = _verdicts(tmp_path / "out")
    assert len(verdicts) == 12
    assert min(verdicts.values()) < max(answered), "the first verdict is committed before the last answer"
    assert any(p.judged and not p.finished and p.done < p.total for p in seen), "progress shows verdicts as they come"
    assert seen[-1].finished and seen[-1].judged == 12 and seen[-1].judge_pending == 0
    # The pass after the build found every verdict paid for by the build itself: asked, none reused.
    assert corpus.judged is not None and (corpus.judged.asked, corpus.judged.reused, corpus.judged.scored) == (
        12,
        0,
        12,
    )
    (entry,) = json.loads((tmp_path / "out" / "cotforge_stats.json").read_text()).values()
    assert entry["judge"] == {"faithful": {"mean": 3.5, "judged": 12, "rejected": 0}}


def test_a_batch_judge_is_asked_after_the_build(tmp_path: Path, scripted) -> None:
    from cotforge.judging import live_judge

    recipe = scripted_recipe(write_problems(tmp_path / "p.jsonl", ["Q answer=5"]), scripted.url)
    batch = {"teacher": {"model": "judge", "backend": "openai-batch"}, "rubrics": ["faithful"]}
    assert live_judge(recipe.model_copy(update={"judge": None}), tmp_path / "j.sqlite") is None
    judged = recipe.model_validate(recipe.model_dump() | {"judge": batch})
    assert live_judge(judged, tmp_path / "j.sqlite") is None
    live = recipe.model_validate(recipe.model_dump() | {"judge": _judge(scripted.url)})
    assert live_judge(live, tmp_path / "j.sqlite") is not None
    assert live_judge(live.model_copy(update={"keep": "majority"}), tmp_path / "j.sqlite") is None


@pytest.mark.integration
def test_killed_builds_resume_with_the_verdicts_they_paid_for(tmp_path: Path, scripted) -> None:
    """SIGKILL, SIGTERM or Ctrl-C at a random moment once verdicts are stored, a few times; then a resume finishes
    the build and its judging. No verdict is asked again after its commit."""
    scripted.latency_s = 0.05
    count = 40
    questions = [f"J{i} answer=5 verdict=4" for i in range(count)]
    recipe = scripted_recipe(
        write_problems(tmp_path / "p.jsonl", questions),
        scripted.url,
        teacher={"max_concurrency": 2},
        judge=_judge(scripted.url),
    )
    path = recipe_yaml(tmp_path / "recipe.yaml", recipe)
    out = tmp_path / "out"
    rng = random.Random(20261208)
    partial, answered, kills = [], [], 0
    for _ in range(3):
        process, how, err = kill_once_grown(path, out, lambda out: len(_verdicts(out)), rng, 0.3)
        kills += 1
        answered.append(stored(out))
        assert how is signal.SIGKILL or process.returncode in (0, 130), err
        partial.append(len(_verdicts(out)))
        if partial[-1] == count:
            break
    assert any(0 < n < count for n in partial), partial
    assert answered[0] < count, "the first kill came while the teacher still answered: verdicts came as it went"
    final = start_build(path, out)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    verdicts = _verdicts(out)
    with Store(out / "store.sqlite") as store:
        records = {row.key: row.question for row in store.rows()}
    assert set(verdicts) == set(records) and len(records) == count
    judged = [e for e in scripted.answered() if "Solution to grade" in e.message]
    for key, question in records.items():
        asked = [e for e in judged if f"Question:\n{question}\n" in e.message]
        assert asked, f"{question}: never judged"
        assert not [e for e in asked if e.arrived > verdicts[key]], f"{question} judged again after its commit"
    assert len(judged) <= count + kills * 2, "at most the verdicts in flight (2) are paid twice per kill"


def test_a_judged_builds_frame_and_dataset_carry_a_column_per_rubric(tmp_path: Path, scripted) -> None:
    questions = ["A answer=5 verdict=4", "B answer=5 verdict=notjson", "C answer=5 verdict=2"]
    judge = {"teacher": _judge(scripted.url)["teacher"], "rubrics": ["faithful", "leak"]}
    recipe = scripted_recipe(write_problems(tmp_path / "p.jsonl", questions), scripted.url, judge=judge)
    corpus = cotforge.build(recipe, tmp_path / "out")
    frame = corpus.to_polars().sort("question")
    assert frame["judge_faithful"].to_list() == [4, None, 2] and frame["judge_leak"].to_list() == [4, None, 2]
    assert frame.height == 3  # one row per record, the judge's columns beside its own
    dataset = corpus.to_dataset()
    assert {"judge_faithful", "judge_leak"} <= set(dataset.column_names)
    unjudged = cotforge.build(recipe.model_copy(update={"judge": None}), tmp_path / "plain")
    assert not [c for c in unjudged.to_polars().columns if c.startswith("judge_")]


def test_a_judge_without_its_api_key_stops_the_build_before_it_asks_anything(tmp_path: Path, scripted) -> None:
    from cotforge.builders.teachers import MissingApiKey

    judge = {"teacher": {"model": "gpt-4o-mini"}, "rubrics": ["faithful"]}
    recipe = scripted_recipe(write_problems(tmp_path / "p.jsonl", ["Q answer=5"]), scripted.url, judge=judge)
    with pytest.raises(MissingApiKey, match="OPENAI_API_KEY"):
        cotforge.build(recipe, tmp_path / "out")
    assert not scripted.answered()  # not one answer paid for that the judge could then not judge
