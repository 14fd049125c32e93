"""`cotforge sweep`: fair cells, held-out questions never trained on, resumable, and a report equal to its cells."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.corpus import BuildDir
from cotforge.hub import with_section
from cotforge.sweeps import (
    SweepSettings,
    build_report,
    choose_arms,
    plan_sweep,
    run_sweep,
)


@pytest.fixture(scope="module")
def corpus(paper_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Levels 1 and 5 of GPT-4o on 24 SVAMP problems (one of them missing at level 5), plus the baselines."""
    subsets = BuildDir(paper_build).read_subsets(["gpt-4o-g1-cot", "gpt-4o-g5-cot", "answer-only-g0-cot", "human-cot"])
    ids = sorted({r.problem_id for r in subsets["gpt-4o-g1-cot"]})[:24]
    records = [r for rows in subsets.values() for r in rows if r.problem_id in ids]
    records = [r for r in records if not (r.granularity == 5 and r.problem_id == ids[0])]
    out = tmp_path_factory.mktemp("corpus")
    BuildDir(out).write_outputs(records, [])
    return out


def settings(corpus: Path, student: Path, training: dict | None = None, **changes) -> SweepSettings:
    training = {"max_steps": 2, "global_batch_size": 4, "micro_batch_size": 4, "max_length": 128, **(training or {})}
    fields = dict(
        corpus=str(corpus),
        students=[str(student)],
        levels=[1, 5],
        baselines=False,
        holdout=0.3,
        **training,
        max_new_tokens=6,
        eval_batch_size=8,
    )
    return SweepSettings(**(fields | changes))


def test_arms_of_the_paper_data(paper_build: Path) -> None:
    subsets = BuildDir(paper_build).read_subsets()
    arms = choose_arms(subsets, SweepSettings(corpus=str(paper_build), students=["s"], teacher="gpt-4o"))
    assert [a.label for a in arms] == ["answer-only", "g1", "g2", "g3", "g4", "g5", "g6", "human"]
    formats = choose_arms(
        subsets, SweepSettings(corpus=str(paper_build), students=["s"], vary="format", teacher="gpt-4o")
    )
    assert [a.label for a in formats] == ["cot", "rar", "subquestions", "symbolic"]
    teachers = choose_arms(subsets, SweepSettings(corpus=str(paper_build), students=["s"], vary="teacher", level=3))
    assert [a.label for a in teachers] == ["gemini-1.5-flash", "gpt-4o", "llama-3-70b"]


def test_every_arm_trains_on_the_same_problems_and_never_on_a_held_out_one(corpus: Path, student: Path) -> None:
    plan = plan_sweep(settings(corpus, student))
    ids = [[r.problem_id for r in rows] for rows in plan.train.values()]
    assert ids[0] == ids[1] and len(ids[0]) + len(plan.test) == 23, "the problem missing at level 5 is left out"
    held_out = {p.id for p in plan.test} | {p.question for p in plan.test}
    assert not any(r.problem_id in held_out or r.question in held_out for rows in plan.train.values() for r in rows)


@pytest.mark.integration
def test_sweep_end_to_end_resumes_and_reports_its_cells(corpus: Path, student: Path, tmp_path: Path) -> None:
    chosen = settings(corpus, student)
    lines: list[str] = []

    def stop_after_first_cell(line: str) -> None:
        lines.append(line)
        if "accuracy" in line:
            raise KeyboardInterrupt  # killed the moment the first cell is finished

    with pytest.raises(KeyboardInterrupt):
        run_sweep(chosen, tmp_path, log=stop_after_first_cell)
    first = next(tmp_path.glob("cells/*--g1--seed1/cell.json"))
    stamp = first.stat().st_mtime_ns

    def stop_in_second_training(line: str) -> None:
        lines.append(line)
        if line.startswith("step"):
            raise KeyboardInterrupt  # killed half-way through the second cell

    with pytest.raises(KeyboardInterrupt):
        run_sweep(chosen, tmp_path, log=stop_in_second_training)
    assert not list(tmp_path.glob("cells/*--g5--seed1/cell.json"))
    lines.clear()
    _plan, unfinished = run_sweep(chosen, tmp_path, log=lines.append)
    assert unfinished == [] and first.stat().st_mtime_ns == stamp, "a finished cell is never retrained"
    assert any("g1--seed1: finished earlier, kept" in line for line in lines)
    assert sum("training 2 steps" in line for line in lines) == 1, "only the second cell trained"

    report = build_report(tmp_path)
    held = json.loads((tmp_path / "held_out.json").read_text())
    for cell in report.cells:
        predictions = pl.read_parquet(tmp_path / cell.predictions)
        assert predictions["problem_id"].to_list() == held["problem_ids"]
        assert cell.accuracy == predictions["correct"].mean() and cell.steps == 2
        trained = BuildDir(tmp_path / "cells" / cell.name / "data").read_subsets()
        trained_ids = {r.problem_id for rows in trained.values() for r in rows}
        assert trained_ids == set(held["train_problem_ids"]) and not trained_ids & set(held["problem_ids"])
    assert {a.arm for a in report.arms} == {"g1", "g5"} and len(report.recommendation) == 1
    by_arm = {cell.arm: cell for cell in report.cells}
    for arm in report.arms:  # one seed: each arm's figures are its cell's, interval included
        assert (arm.accuracy, arm.interval) == (by_arm[arm.arm].accuracy, by_arm[arm.arm].interval)
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (tmp_path / "sweep_report.md").read_text()
    assert "| g1 |" in markdown and "| g5 |" in markdown


@pytest.mark.integration
def test_shards_split_the_cells_and_report_merges_them(corpus: Path, student: Path, tmp_path: Path) -> None:
    chosen = settings(corpus, student)
    _, left = run_sweep(chosen, tmp_path, shard=(0, 2), log=lambda _: None)
    assert len(left) == 1
    result = CliRunner().invoke(app, ["sweep", "report", str(tmp_path)])
    assert result.exit_code == 0  # a partial report: one cell so far
    _, left = run_sweep(chosen, tmp_path, shard=(1, 2), log=lambda _: None)
    assert left == [] and len(build_report(tmp_path).cells) == 2
    other = CliRunner().invoke(
        app,
        ["sweep", "--dataset", str(corpus), "--student", str(student), "--out", str(tmp_path), "--levels", "1,5"],
    )
    assert other.exit_code == 2 and "other settings" in other.output


def test_a_lora_sweep_evaluates_each_cell_merged(corpus: Path, student: Path, tmp_path: Path) -> None:
    _, left = run_sweep(settings(corpus, student, {"lora_rank": 4}), tmp_path, keep_models=True, log=lambda _: None)
    assert left == []
    for cell in build_report(tmp_path).cells:
        model = tmp_path / "cells" / cell.name / "model"
        assert (model / "adapter_model.safetensors").exists() and (model / "merged" / "model.safetensors").exists()
        assert json.loads((model / "train_report.json").read_text())["config"]["lora_rank"] == 4
        assert cell.total > 0


def test_vllm_evaluates_a_cell_only_once_the_student_is_freed(
    corpus: Path, student: Path, tmp_path: Path, monkeypatch
) -> None:
    """The sweep's GPU path with vLLM stood in for: when the engine starts nothing of the trained student is left
    (so its memory can go back), the engine asks for a share of what is free, not vLLM's 0.9 of the whole GPU, and
    it is shut down before the next cell."""
    import gc
    import sys
    import types
    import weakref
    from types import SimpleNamespace

    import torch

    from cotforge.train import evaluate, loop

    students: list[weakref.ref] = []
    real_load = loop.load_student

    def load_student(*args, **kwargs):
        model = real_load(*args, **kwargs)
        students.append(weakref.ref(model))
        return model

    events: list[object] = []

    class LLM:
        def __init__(self, model: str, gpu_memory_utilization: float) -> None:
            events.append(("start", gpu_memory_utilization, sum(ref() is not None for ref in students)))
            self.llm_engine = None

        def generate(self, prompts, params, use_tqdm):
            return [SimpleNamespace(outputs=[SimpleNamespace(text="The answer is 7.")]) for _ in prompts]

        def shutdown(self) -> None:
            events.append("shutdown")

    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: events.append("collect") or real_collect(*a))
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setattr(sys.modules["vllm"], "LLM", LLM, raising=False)
    monkeypatch.setattr(sys.modules["vllm"], "SamplingParams", dict, raising=False)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (40 * 2**30, 100 * 2**30))
    monkeypatch.setattr(loop, "load_student", load_student)
    monkeypatch.setattr(evaluate, "vllm_can_run", lambda *a: True)
    _, left = run_sweep(settings(corpus, student), tmp_path, log=lambda _: None)
    assert left == [] and len(students) == 2
    starts = [i for i, event in enumerate(events) if isinstance(event, tuple)]
    assert [events[i] for i in starts] == [("start", 0.36, 0)] * 2  # 90% of the 40 GiB free; no student alive
    for i in starts:
        assert events[i - 1] == "collect" and events[i + 1 : i + 3] == ["shutdown", "collect"]


def test_sweep_usage_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["sweep"]).exit_code == 2
    result = runner.invoke(app, ["sweep", "report", "/nonexistent"])
    assert result.exit_code == 2 and "not a sweep folder" in result.output
    result = runner.invoke(app, ["sweep", "--dataset", "x", "--student", "s", "--out", "/tmp/o", "--shard", "3/2"])
    assert result.exit_code == 2 and "--shard" in result.output


def test_card_section_is_added_then_replaced() -> None:
    card = "# corpus\n\ntext\n\n## Citation\n\nbib\n"
    once = with_section(card, "sweep", "## Sweep\n\nfirst")
    assert once.index("first") < once.index("## Citation")
    twice = with_section(once, "sweep", "## Sweep\n\nsecond")
    assert "first" not in twice and twice.count("<!-- cotforge:sweep -->") == 1 and twice.endswith("bib\n")


PINNED = Path(__file__).parent / "fixtures" / "sweep_settings_before_groups.json"


@pytest.mark.parametrize("scenario", json.loads(PINNED.read_text(encoding="utf-8")))
def test_a_sweep_made_before_the_trainer_groups_resumes_as_the_same_sweep(
    scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sweep.json and the students' labels (in every cell's name) as the code before TrainConfig's groups wrote
    them, for the same command line (or API call): the folder is claimed as the same sweep, nothing re-trained."""
    import cotforge.fetch
    import cotforge.sweeps
    from cotforge.sweeps.cells import check_claim
    from cotforge.sweeps.layout import SweepDir
    from cotforge.sweeps.planning import student_label

    pinned = json.loads(PINNED.read_text(encoding="utf-8"))[scenario]
    seen: list[SweepSettings] = []
    monkeypatch.setattr(cotforge.fetch, "fetch_corpus", lambda dataset, where: "CORPUS")
    monkeypatch.setattr(
        cotforge.sweeps, "run_sweep", lambda s, out, **o: seen.append(s) or (SimpleNamespace(cells=[1]), [1])
    )
    if pinned["args"] is None:
        seen.append(SweepSettings(corpus="CORPUS", students=["s", "m/x.gguf"], levels=[1, 5], baselines=False))
    else:
        args = ["sweep", "--dataset", "D", "--out", str(tmp_path / "o"), *pinned["args"]]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    settings, folder = seen[0], SweepDir(tmp_path)
    folder.settings_path.write_text(json.dumps(pinned["sweep_json"]), encoding="utf-8")
    check_claim(folder, settings)  # raises for a sweep with other settings
    assert SweepSettings.model_validate(pinned["sweep_json"]) == settings
    assert [student_label(student, settings) for student in settings.students] == pinned["labels"]
