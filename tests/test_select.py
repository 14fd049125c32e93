"""`--select`: keep the part of each subset's records best suited to a student (lowest RSR, or a baseline score) or
a random part of the same size, in `export`, `train` and as sweep arms beside the whole arm."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.corpus import BuildDir
from cotforge.dataset_cards.stats import write_finished
from cotforge.quality.rsr import RecordScore
from cotforge.quality.selection import Selection, UnscoredRecords, parse_selection
from cotforge.suitability import score_build
from cotforge.sweeps import SweepError, build_report, plan_sweep, run_sweep
from cotforge.sweeps.cells import read_cell
from cotforge.sweeps.layout import SweepDir
from cotforge.train.config import TrainConfig
from cotforge.train.data import TrainDataError, load_pairs

from .helpers import made_record
from .test_sweep import corpus, settings  # noqa: F401  (corpus: the sweep tests' fixture)


def _score(rsr: float | None, surprisal: float = 1.0, rank: float = 1.0) -> RecordScore:
    return RecordScore(tokens=4, mean_surprisal=surprisal, mean_rank=rank, rsr=rsr)


def _records(n: int) -> list:
    return [made_record(f"{i} + 1", f"k{i:02d}", "5", f"add {i} " * (i % 5 + 1)) for i in range(n)]


@pytest.mark.parametrize(
    ("text", "by", "fraction", "seed", "label"),
    [
        ("rsr:0.5", "rsr", 0.5, 0, "rsr-0.5"),
        (" surprisal:0.25", "surprisal", 0.25, 0, "surprisal-0.25"),
        ("rank:1", "rank", 1.0, 0, "rank-1"),
        ("random:0.5", "random", 0.5, 0, "random-0.5"),
        ("random:0.50:7", "random", 0.5, 7, "random-0.5-7"),
    ],
)
def test_a_selection_is_parsed_into_one_spelling(text: str, by: str, fraction: float, seed: int, label: str) -> None:
    found = parse_selection(text)
    assert (found.by, found.fraction, found.seed, found.label) == (by, fraction, seed, label)
    assert parse_selection(found.text) == found


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("best:0.5", "give rsr:FRACTION"),
        ("rsr", "give a fraction above 0 and at most 1"),
        ("rsr:0", "give a fraction above 0 and at most 1"),
        ("rsr:1.5", "give a fraction above 0 and at most 1"),
        ("rsr:nan", "give a fraction above 0 and at most 1"),
        ("rsr:0.5:3", "random:FRACTION[:SEED]"),
        ("random:0.5:x", "and a whole seed"),
    ],
)
def test_a_bad_selection_is_refused_naming_the_option(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=r"^--select ") as error:
        parse_selection(text)
    assert says in str(error.value) and repr(text) in str(error.value)


def test_the_lowest_scores_are_kept_ties_by_key_and_no_rsr_last() -> None:
    records = _records(7)  # keys k00..k06
    rsr = {"k00": 3.0, "k01": None, "k02": 1.0, "k03": 2.0, "k04": 2.0, "k05": 5.0, "k06": 2.0}
    scores = {key: _score(value, surprisal=10 - i, rank=i) for i, (key, value) in enumerate(rsr.items())}
    keep = parse_selection("rsr:0.4").apply("s", list(reversed(records)), scores)  # 7 x 0.4: 3 kept
    assert [r.key for r in keep] == ["k04", "k03", "k02"], "1.0, then two of the three 2.0s by key, in the order given"
    six = parse_selection("rsr:0.8").apply("s", records, scores)  # 7 x 0.8 = 5.6: 6 kept
    assert [r.key for r in six] == ["k00", "k02", "k03", "k04", "k05", "k06"], "no RSR (no surprisal) sorts last"
    by_surprisal = parse_selection("surprisal:0.3").apply("s", records, scores)
    assert [r.key for r in by_surprisal] == ["k05", "k06"], "the highest index has the lowest surprisal"
    assert [r.key for r in parse_selection("rank:0.3").apply("s", records, scores)] == ["k00", "k01"]


def test_every_record_needs_a_score() -> None:
    records = _records(4)
    scores = {r.key: _score(1.0) for r in records[:3]}
    with pytest.raises(UnscoredRecords, match="1 of the 4 records of s have no score"):
        parse_selection("rsr:0.5").apply("s", records, scores)


def test_a_random_part_is_the_same_size_and_drawn_again_from_its_seed() -> None:
    records = _records(41)
    half = Selection(by="random", fraction=0.5)
    first = half.apply("s", records)
    assert len(first) == 21 == len(parse_selection("rsr:0.5").apply("s", records, {r.key: _score(1) for r in records}))
    assert [r.key for r in half.apply("s", list(reversed(records)))] == [r.key for r in reversed(first)], (
        "the draw depends on the records, not their order"
    )
    assert {r.key for r in parse_selection("random:0.5:1").apply("s", records)} != {r.key for r in first}
    assert {r.key for r in half.apply("other", records)} != {r.key for r in first}, "each subset its own draw"


def _build(folder: Path) -> BuildDir:
    records = [made_record(f"{i} + {i}", f"k{i}", "5", f"add {i} and {i} " * (i + 1)) for i in range(6)]
    write_finished(BuildDir(folder), "toy", records, [])
    return BuildDir(folder)


def _lowest_rsr_keys(directory: BuildDir, count: int) -> set[str]:
    rows = pl.read_parquet(directory.scores_path).sort(["rsr", "key"])
    return set(rows["key"].to_list()[:count])


def test_export_refuses_unscored_records_naming_the_command_that_scores_them(tmp_path: Path, student: Path) -> None:
    directory = _build(tmp_path / "build")
    runner = CliRunner()
    export = ["export", str(directory.path), "-f", "trl-prompt-completion", "-o", str(tmp_path / "x")]
    for extra, says in (
        (["--select", "rsr:0.5"], "give --student"),
        (["--student", str(student)], "give it with a --select that ranks by score"),
        (["--select", "rsr:half"], "--select 'rsr:half': give a fraction"),
    ):
        result = runner.invoke(app, [*export, *extra])
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
    asked = [*export, "--select", "rsr:0.5", "--student", str(student)]
    refused = runner.invoke(app, asked)
    text = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "6 of the 6 records of t-g2-cot have no score" in text
    assert not (tmp_path / "x").exists(), "nothing written, and never every record"
    command = text.split("run `", 1)[1].split("`", 1)[0]
    assert command.startswith("cotforge score ") and "--reasoning keep" in command  # export's --reasoning
    scored = runner.invoke(app, shlex.split(command)[1:])  # the very command named
    assert scored.exit_code == 0, scored.output
    result = runner.invoke(app, asked)
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "x").glob("*.jsonl")
    prompts = [json.loads(line)["prompt"] for line in written.read_text().splitlines()]
    by_prompt = {r.prompt: r.key for r in directory.read_records()}
    assert {by_prompt[p] for p in prompts} == _lowest_rsr_keys(directory, 3)


def test_train_selects_from_the_students_own_scores_and_records_the_selection(tmp_path: Path, student: Path) -> None:
    directory = _build(tmp_path / "build")
    config = TrainConfig(
        model=str(student),
        dataset=str(directory.path),
        select="rsr:0.5",
        max_length=128,
        max_steps=1,
        global_batch_size=2,
        micro_batch_size=2,
        output_dir=str(tmp_path / "model"),
    )
    from cotforge.api import train_student

    with pytest.raises(TrainDataError, match=r"--select rsr:0.5: 6 of the 6 records .* run `cotforge score "):
        train_student(config)
    score_build(directory, str(student), max_length=128)  # the trainer's rendering: reasoning drop
    report = train_student(config)
    assert report.examples == 3
    saved = json.loads((tmp_path / "model" / "train_report.json").read_text())
    assert saved["config"]["select"] == "rsr:0.5"
    with pytest.raises(TrainDataError, match="--select need a build directory"):
        random_half = TrainConfig(model="m", dataset="d", select="random:0.5").data.quality_filter()
        load_pairs(str(directory.scores_path), quality=random_half)
    with pytest.raises(ValueError, match="--select 'rsr:2'"):
        TrainConfig(model="m", dataset="d", select="rsr:2")


def test_sweep_selection_arms_sit_beside_the_whole_arm_and_resume_as_cells(
    corpus: Path,  # noqa: F811
    student: Path,
    tmp_path: Path,
    monkeypatch,
) -> None:
    chosen = settings(corpus, student, selections=["rsr:0.5", "random:0.5"])
    plan = plan_sweep(chosen)
    assert [a.label for a in plan.arms] == ["g1", "g1@rsr-0.5", "g1@random-0.5", "g5", "g5@rsr-0.5", "g5@random-0.5"]
    with pytest.raises(SweepError, match="has not scored its records"):
        plan.records(str(student), plan.arms[1])
    plan, left = run_sweep(settings(corpus, student, selections=["rsr:0.5"]), tmp_path, log=lambda _: None)
    assert left == []
    pool = len(plan.train["g5"])
    cells = {c.arm.label: read_cell(SweepDir(tmp_path), c.name) for c in plan.cells}
    assert set(cells) == {"g1", "g1@rsr-0.5", "g5", "g5@rsr-0.5"}
    selected = cells["g5@rsr-0.5"]
    assert (selected.selection, cells["g5"].selection) == ("rsr:0.5", None)
    assert selected.train_examples == (pool + 1) // 2 and cells["g5"].train_examples == pool
    scores = BuildDir(SweepDir(tmp_path).predict_dir)
    cell = next(c.name for c in plan.cells if c.arm.label == "g5@rsr-0.5")
    data = BuildDir(SweepDir(tmp_path).cell_dir(cell) / "data")
    trained = {r.key for r in data.read_records()}
    pool_keys = {r.key for r in plan.train["g5"]}
    rows = pl.read_parquet(scores.scores_path).filter(pl.col("key").is_in(list(pool_keys))).sort(["rsr", "key"])
    assert trained == set(rows["key"].to_list()[: len(trained)]), "the lowest-RSR half of the arm"

    markdown = (build_report(tmp_path), (tmp_path / "sweep_report.md").read_text())[1]
    assert "| g5@rsr-0.5 |" in markdown and f"g5@rsr-0.5 {(pool + 1) // 2} of {pool}" in markdown

    def no_training(*args, **kwargs):
        raise AssertionError("a resumed sweep trained a finished cell")

    monkeypatch.setattr("cotforge.train.loop.train", no_training)
    run_sweep(settings(corpus, student, selections=["rsr:0.5"]), tmp_path, log=lambda _: None)
    with pytest.raises(SweepError, match=r"other settings \(selections\)"):
        run_sweep(settings(corpus, student, selections=["rsr:0.25"]), tmp_path, log=lambda _: None)
    with pytest.raises(ValueError, match="--select 'best:1'"):
        settings(corpus, student, selections=["best:1"])


def test_the_sweep_command_names_the_selection_arms_and_refuses_a_bad_one(
    corpus: Path,  # noqa: F811
    student: Path,
    tmp_path: Path,
) -> None:
    args = ["sweep", "--dataset", str(corpus), "--student", str(student), "--out", str(tmp_path), "--dry-run"]
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--arm", "g1", "--arm", "g5", "--select", "rsr:0.50,random:0.5"])
    assert result.exit_code == 0, result.output
    assert "arms: g1, g1@rsr-0.5, g1@random-0.5, g5, g5@rsr-0.5, g5@random-0.5" in result.output
    assert "cells: 6 (1 student(s) x 6 arms" in result.output
    assert settings(corpus, student, selections=["rsr:0.50"]).selections == ["rsr:0.5"], "one spelling, one sweep"
    for bad, says in (("best:1", "--select 'best:1': give rsr:FRACTION"), ("rsr:0.5,rsr:0.50", "each selection once")):
        refused = runner.invoke(app, [*args, "--select", bad])
        assert refused.exit_code == 2 and says in " ".join(refused.output.split()), refused.output
