"""The sweep's hold-out keeps near-variant questions together, its report marks unfinished seeds, and a dry run says
what the sweep could detect before anything is trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.sweeps import CellResult, SweepSettings, build_report, plan_sweep, sweep_train_config
from cotforge.sweeps.cells import claim
from cotforge.sweeps.holdout import highest_similarity, near_variant_groups, split_by_groups
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.settings import SweepError
from cotforge.train.config import TrainConfig

FAMILIES = {
    "apples": [
        "Jack had 5 apples. He gave 2 apples to Jill. How many apples does Jack have now?",
        "Jack had 9 apples. He gave 4 apples to Jill. How many apples does Jack have now?",
        "Jack had 9 apples. He gave 4 apples to Jill. How many apples did Jill get from Jack?",
    ],
    "trains": [
        "A train travels 60 miles in 2 hours. What is its speed in miles per hour?",
        "A train travels 90 miles in 3 hours. What is its speed in miles per hour?",
    ],
    "pages": [
        "Mary reads 12 pages a day for 7 days. How many pages does she read in total?",
        "Mary reads 15 pages a day for 6 days. How many pages does she read in total?",
        "Mary reads 15 pages a day for 6 days. How many pages does she read in all of those days?",
    ],
    "marbles": ["Tom has 3 bags with 8 marbles in each bag. How many marbles does Tom have?"],
    "cookies": ["A baker bakes 48 cookies and packs them in boxes of 6. How many boxes does she fill?"],
}


def test_each_family_of_near_variants_stays_on_one_side() -> None:
    ids = [f"{family}-{i}" for family, questions in FAMILIES.items() for i in range(len(questions))]
    questions = [q for family in FAMILIES.values() for q in family]
    groups = sorted(sorted(ids[i].split("-")[0] for i in g) for g in near_variant_groups(questions, 0.8))
    assert [g[0] for g in groups] == sorted(FAMILIES) and all(len(set(g)) == 1 for g in groups)
    for fraction in (0.2, 0.3, 0.5):
        split = split_by_groups(ids, questions, fraction, None, 0.8)
        held_families = {i.split("-")[0] for i in split.held_out}
        assert not held_families & {i.split("-")[0] for i in split.training}
        assert split.held_out and split.training and split.groups == 5 and split.largest_group == 3
        held = [q for i, q in zip(ids, questions, strict=True) if i in split.held_out]
        kept = [q for i, q in zip(ids, questions, strict=True) if i in split.training]
        assert highest_similarity(held, kept) < 0.8
    assert split_by_groups(ids, questions, 0.3, None, 0.8) == split_by_groups(ids, questions, 0.3, None, 0.8)
    assert len(split_by_groups(ids, questions, 0.9, 2, 0.8).held_out) <= 2


def test_the_paper_hold_out_has_no_near_variant_in_training(paper_build: Path) -> None:
    settings = SweepSettings(
        corpus=str(paper_build), students=["s"], teacher="gpt-4o", levels=[1, 3], baselines=False, eval_limit=120
    )
    plan = plan_sweep(settings)
    held = plan.held_out
    assert held["questions"] == 120 and held["highest_similarity"] < settings.holdout_similarity
    assert held["near_variant_groups"] < held["questions"] + held["training_problems"]
    trained = [r.question for r in plan.train["g1"]]
    assert highest_similarity([p.question for p in plan.test], trained) == held["highest_similarity"]


def _fake_sweep(tmp_path: Path, seeds_done: dict[str, list[int]], rows: dict[tuple[str, int], list[int]]) -> Path:
    """A sweep folder with finished cells whose predictions are given, without training anything."""
    settings = SweepSettings(
        corpus=str(tmp_path), students=["student"], seeds=[1, 2], train=sweep_train_config("student", str(tmp_path))
    )
    sweep = SweepDir(tmp_path)
    claim(sweep, settings)
    questions = len(next(iter(rows.values())))
    sweep.held_out_path.write_text(
        json.dumps(
            {
                "check": {
                    "questions": questions,
                    "training_problems": 10,
                    "dropped_from_training": 0,
                    "ngram_overlaps_kept": 0,
                }
            }
        )
    )
    for arm, seeds in seeds_done.items():
        for seed in seeds:
            name = f"student--{arm}--seed{seed}"
            folder = sweep.cell_dir(name)
            folder.mkdir(parents=True)
            correct = rows[(arm, seed)]
            pl.DataFrame({"problem_id": [f"q{i}" for i in range(questions)], "correct": correct}).write_parquet(
                folder / "predictions.parquet"
            )
            result = CellResult(
                name=name,
                student="student",
                arm=arm,
                subset=arm,
                level=int(arm[1:]),
                seed=seed,
                steps=1,
                train_examples=10,
                completion_tokens=None,
                final_loss=None,
                mean_rationale_words=10.0,
                accuracy=sum(correct) / questions,
                interval=(0.0, 1.0),
                correct=sum(correct),
                total=questions,
                parsed=questions,
                train_wall_s=1.0,
                eval_wall_s=1.0,
                predictions=(folder / "predictions.parquet").relative_to(tmp_path).as_posix(),
            )
            sweep.cell_file(name).write_text(result.model_dump_json())
    return tmp_path


def test_unfinished_seeds_are_marked_in_every_output(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = {key: [int(v) for v in rng.random(60) < 0.3] for key in [("g1", 1), ("g1", 2), ("g3", 1)]}
    report = build_report(_fake_sweep(tmp_path, {"g1": [1, 2], "g3": [1]}, rows))
    by_arm = {a.arm: a for a in report.arms}
    assert by_arm["g3"].missing_seeds == [2] and by_arm["g1"].missing_seeds == []
    assert by_arm["g1"].seed_accuracies == {
        1: pytest.approx(sum(rows[("g1", 1)]) / 60),
        2: pytest.approx(sum(rows[("g1", 2)]) / 60),
    }
    assert not report.verdicts["student"].complete
    assert "Unfinished seeds: g3" in report.recommendation["student"]
    markdown = (tmp_path / "sweep_report.md").read_text()
    assert "(seed 2 unfinished)" in markdown and "model confidence set" in markdown
    saved = json.loads((tmp_path / "sweep_report.json").read_text())
    assert saved["arms"][1]["missing_seeds"] == [2] and "gap_for_80_power" in saved["verdicts"]["student"]


def test_a_half_right_question_counts_half_in_the_report(tmp_path: Path) -> None:
    """g3 is right on 20 questions in seed 1 only, g1 on none: g3 is ahead by 1/6 (a half-right question is not
    rounded), and with the run-to-run spread this sweep measured (g3's seeds 33 points apart) that is not enough."""
    rows = {("g1", 1): [0] * 60, ("g1", 2): [0] * 60, ("g3", 1): [1] * 20 + [0] * 40, ("g3", 2): [0] * 60}
    report = build_report(_fake_sweep(tmp_path, {"g1": [1, 2], "g3": [1, 2]}, rows))
    by_arm = {a.arm: a for a in report.arms}
    assert by_arm["g3"].accuracy - by_arm["g1"].accuracy == pytest.approx(20 / 120)
    found = report.verdicts["student"]
    assert found.run_sd_source == "pooled" and found.run_sd is not None and found.run_sd > 0.1
    assert found.could_be_best == ["g3", "g1"] and found.seed_correlation is not None


def test_the_report_resamples_the_hold_outs_groups(tmp_path: Path) -> None:
    """held_out.json's question_groups reach the verdict: 60 questions in 12 groups of 5."""
    rng = np.random.default_rng(1)
    rows = {key: [int(v) for v in rng.random(60) < 0.4] for key in [("g1", 1), ("g3", 1)]}
    sweep = _fake_sweep(tmp_path, {"g1": [1], "g3": [1]}, rows)
    held_out = json.loads((tmp_path / "held_out.json").read_text())
    held_out["question_groups"] = [i // 5 for i in range(60)]
    (tmp_path / "held_out.json").write_text(json.dumps(held_out))
    report = build_report(sweep)
    assert report.verdicts["student"].groups == 12
    assert "60 questions resampled in 12 near-variant groups" in report.recommendation["student"]
    assert "no run-to-run variance could be measured" in report.recommendation["student"]
    given = CliRunner().invoke(app, ["sweep", "report", str(sweep), "--run-sd", "0.03"])
    assert given.exit_code == 0, given.output
    saved = json.loads((tmp_path / "sweep_report.json").read_text())
    assert saved["settings"]["run_sd"] == 0.03 and saved["verdicts"]["student"]["run_sd_source"] == "given"
    assert "SD 3.0% given (--run-sd)" in given.output
    held_out["question_groups"] = [0] * 59
    (tmp_path / "held_out.json").write_text(json.dumps(held_out))
    with pytest.raises(SweepError, match="question_groups"):
        build_report(sweep)


def test_a_sweep_from_before_near_variant_hold_outs_is_not_resumed(tmp_path: Path) -> None:
    settings = SweepSettings(corpus=str(tmp_path), students=["s"], train=sweep_train_config("s", str(tmp_path)))
    saved = settings.model_dump(mode="json")
    del saved["holdout_similarity"]
    (tmp_path / "sweep.json").write_text(json.dumps(saved))
    with pytest.raises(SweepError, match="near-variant"):
        claim(SweepDir(tmp_path), settings)


def test_a_student_named_by_its_gguf_file(tmp_path: Path) -> None:
    config = TrainConfig(model="/models/smol/SmolLM2.Q4.gguf", dataset="d")
    assert (config.model, config.gguf_file) == ("/models/smol", "SmolLM2.Q4.gguf")
    settings = SweepSettings(
        corpus="c", students=["/a/one.gguf", "/b/two.gguf", "hub/model"], train=sweep_train_config("/a/one.gguf", "c")
    )
    assert settings.student_source("/b/two.gguf") == ("/b", "two.gguf")
    assert settings.student_source("hub/model") == ("hub/model", None)


def test_dry_run_states_the_power_and_trains_nothing(paper_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = [
        "sweep",
        "--dataset",
        str(paper_build),
        "--student",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "--out",
        str(out),
        "--teacher",
        "gpt-4o",
        "--levels",
        "0,1,3,6",
        "--eval-limit",
        "150",
        "--seeds",
        "1,2",
        "--dry-run",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "cells: 10 (1 student(s) x 5 arms x 2 seed(s))" in result.output
    assert "150 held out" in result.output and "80% power" in result.output
    assert not (out / "sweep.json").exists()
    more = CliRunner().invoke(app, [*args[:-5], "--eval-limit", "190", "--seeds", "1,2,3", "--dry-run"])
    gaps = [float(text.split("80% power from a gap of ")[1].split(" ")[0]) for text in (result.output, more.output)]
    assert gaps[1] < gaps[0]
    one_seed = [*args[:-3], "--seeds", "1", "--dry-run"]
    runs = [CliRunner().invoke(app, [*one_seed, *extra]).output for extra in ([], ["--run-sd", "0.02"])]
    assert "a run-to-run SD of 2.0% (--run-sd)" in runs[1] and "no run-to-run spread (give --run-sd)" in runs[0]
    without, given = (float(text.split("80% power from a gap of ")[1].split(" ")[0]) for text in runs)
    assert given > without
    bad = CliRunner().invoke(app, [*args, "--prior-accuracy", "1.5"])
    assert bad.exit_code == 2 and "--prior-accuracy" in bad.output
