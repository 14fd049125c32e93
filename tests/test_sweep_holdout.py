"""The sweep's hold-out keeps near-variant questions together, its report marks unfinished seeds, and a dry run says
what the sweep could detect before anything is trained."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from rapidfuzz.distance import Indel
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.contamination import TrainingQuestion, check
from cotforge.corpus import BuildDir
from cotforge.sweeps import CellResult, SweepSettings, build_report, plan_sweep
from cotforge.sweeps.cells import claim, drawn_hold_out, record_held_out
from cotforge.sweeps.holdout import highest_similarity, members, near_variants, split_by_groups
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.planning import SweepPlan, describe_plan
from cotforge.sweeps.settings import SweepError
from cotforge.train.config import TrainConfig

from .helpers import made_record

ALPHABET = string.ascii_lowercase + string.digits
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
    groups = sorted(sorted(ids[i].split("-")[0] for i in g) for g in members(near_variants(questions, 0.8).group))
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


def _chain(length: int, seed: int = 0) -> list[str]:
    """Questions each 0.96 similar to the one before (two of 50 characters changed), unrelated end to end."""
    rng = random.Random(seed)
    letters = [rng.choice(ALPHABET) for _ in range(50)]
    questions = []
    for _ in range(length):
        questions.append("".join(letters))
        for _ in range(2):
            letters[rng.randrange(50)] = rng.choice(ALPHABET)
    return questions


def test_a_chain_of_near_variants_is_held_out_a_group_at_a_time() -> None:
    chain = _chain(301)
    assert (
        Indel.normalized_similarity(chain[0], chain[1]) == 0.96
        and Indel.normalized_similarity(chain[0], chain[-1]) < 0.5
    )
    found = near_variants(chain, 0.8)
    assert len(members(found.family)) == 1, "linked end to end: one family"
    groups = members(found.group)
    assert len(groups) > 20 and max(len(g) for g in groups) <= 11
    for group in groups:  # complete linkage: every pair in a group is a near-variant
        assert all(Indel.normalized_similarity(chain[i], chain[j]) >= 0.8 for i in group for j in group)
    ids = [f"c{i:03d}" for i in range(301)]
    split = split_by_groups(ids, chain, 0.3, None, 0.8)
    assert 80 <= len(split.held_out) <= 90, "joined transitively, the chain could never be held out"
    assert split.families_split == 1 and split.groups_too_big == 0
    text = dict(zip(ids, chain, strict=True))
    # The guarantee: no training question is a near-variant of a held-out one; those that were are dropped, and few
    # are, since the held-out groups sit next to each other.
    assert highest_similarity([text[i] for i in split.held_out], [text[i] for i in split.training]) < 0.8
    assert 0 < len(split.near_training) <= 30
    assert not set(split.near_training) & (set(split.training) | set(split.held_out))
    assert len(split.held_out) + len(split.training) + len(split.near_training) == 301
    assert len(split.held_out_groups) == len(split.held_out) and len(set(split.held_out_groups)) > 5
    # The same split whatever order the questions come in.
    shuffled = list(zip(ids, chain, strict=True))
    random.Random(1).shuffle(shuffled)
    assert split_by_groups([i for i, _ in shuffled], [q for _, q in shuffled], 0.3, None, 0.8) == split


def test_a_sweep_over_a_chain_trains_on_no_near_variant_of_a_held_out_question(tmp_path: Path) -> None:
    chain = _chain(301, seed=2)
    records = [
        made_record("x", f"g{level}-c{i:03d}", "5", "Add them. The answer is 5", level=level).model_copy(
            update={"problem_id": f"c{i:03d}", "question": question}
        )
        for level in (1, 3)
        for i, question in enumerate(chain)
    ]
    BuildDir(tmp_path / "corpus").write_outputs(records, [])
    settings = SweepSettings(corpus=str(tmp_path / "corpus"), students=["s"], levels=[1, 3], baselines=False)
    plan = plan_sweep(settings)
    held = plan.held_out
    assert 80 <= held["questions"] <= 90 and held["families_split"] == 1 and held["near_variant_groups"] == 1
    trained = [r.question for r in plan.train["g1"]]
    assert highest_similarity([p.question for p in plan.test], trained) == held["highest_similarity"] < 0.8
    assert 0 < held["near_variants_dropped"] == held["dropped_from_training"] == 301 - held["questions"] - len(trained)
    assert plan.question_groups is not None and len(plan.question_groups) == len(plan.test)
    described = describe_plan(plan, 0.2)
    assert "too big for the hold-out held out a group at a time" in described and "; 1 such families)" in described
    assert f"{held['near_variants_dropped']} training questions dropped as near-variants of held-out ones" in described


def test_the_similarity_threshold_is_compared_as_written() -> None:
    """0.8 accepts a pair exactly 4/5 similar and refuses one 0.796 similar (which a percent byte rounded to 80)."""
    exact, below = ("abcde", "abcdx"), ("a" * 80 + "b" * 21, "a" * 80 + "c" * 20)
    assert Indel.normalized_similarity(*exact) == 0.8 and 0.795 < Indel.normalized_similarity(*below) < 0.8
    groups = members(near_variants([*exact, *below], 0.8).group)
    assert sorted(map(sorted, groups)) == [[0, 1], [2], [3]]
    records = [TrainingQuestion(f"t{i}", "d", q) for i, q in enumerate([exact[0], below[0]])]
    found = check(records, {"eval": [exact[1], below[1]]}, near=0.8).overlaps
    assert [(o.problem_id, o.similarity) for o in found] == [("t0", 0.8)]


def test_a_group_larger_than_the_hold_out_is_reported(paper_build: Path) -> None:
    variants = [
        f"Tom has {n} red apples and {n + 1} green apples in his basket. How many apples?" for n in range(10, 22)
    ]
    others = [q for family in FAMILIES.values() for q in family]
    ids = [f"v{i:02d}" for i in range(len(variants))] + [f"o{i:02d}" for i in range(len(others))]
    split = split_by_groups(ids, variants + others, 0.5, 4, 0.8)
    assert (split.groups_too_big, split.questions_too_big) == (1, 12) and len(split.held_out) == 4
    assert not any(i.startswith("v") for i in split.held_out)
    # The dry run says so, and names the knobs.
    result = CliRunner().invoke(
        app,
        ["sweep", "--dataset", str(paper_build), "--student", "s", "--out", str(paper_build.parent / "x"),
         "--teacher", "gpt-4o", "--levels", "1,3", "--eval-limit", "5", "--dry-run"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "larger than the whole hold-out and were never held out (raise --holdout or --eval-limit" in result.output


def test_question_groups_follow_the_held_out_order_and_a_resumed_sweep_keeps_its_hold_out(
    paper_build: Path, tmp_path: Path
) -> None:
    settings = SweepSettings(
        corpus=str(paper_build), students=["s"], teacher="gpt-4o", levels=[1, 3], baselines=False, eval_limit=120
    )
    plan = plan_sweep(settings)
    sweep = SweepDir(tmp_path)
    claim(sweep, settings)
    record_held_out(sweep, plan)
    saved = json.loads(sweep.held_out_path.read_text())
    assert saved["problem_ids"] == [p.id for p in plan.test]
    groups = saved["question_groups"]
    assert len(groups) == len(plan.test) == 120
    # Every family fitted whole here: held-out questions share a number exactly when they are linked near-variants.
    assert saved["check"]["families_split"] == 0
    families = near_variants([p.question for p in plan.test], settings.holdout_similarity).family
    pairs = set(zip(groups, families.tolist(), strict=True))  # one number for one family: the same partition
    assert len(pairs) == len(set(groups)) == len(set(families.tolist()))
    assert len(set(groups)) < len(groups), "SVAMP's held-out stories come with variants"
    assert drawn_hold_out(sweep, settings) is None, "no cell finished: nothing to keep"
    # A sweep drawn by an earlier cotforge (another question held out, no groups recorded) whose cell finished: resumed,
    # it keeps the problems that cell was trained and evaluated on, and its groups are found for the statistics.
    held, trained = saved["problem_ids"], saved["train_problem_ids"]
    earlier = {
        "check": saved["check"],
        "problem_ids": sorted([*held[1:], trained[0]]),
        "train_problem_ids": sorted([*trained[1:], held[0]]),
    }
    sweep.held_out_path.write_text(json.dumps(earlier))
    sweep.cell_dir("c").mkdir(parents=True)
    sweep.cell_file("c").write_text("{}")
    resumed = plan_sweep(settings, drawn_hold_out(sweep, settings))
    assert [p.id for p in resumed.test] == earlier["problem_ids"]
    assert [r.problem_id for r in resumed.train["g3"]] == earlier["train_problem_ids"]
    record_held_out(sweep, resumed)
    again = json.loads(sweep.held_out_path.read_text())
    assert again["problem_ids"] == earlier["problem_ids"] and len(again["question_groups"]) == 120
    assert drawn_hold_out(sweep, settings.model_copy(update={"eval_limit": 100})) is None, "claim refuses it"
    sweep.held_out_path.write_text('{"check": {}, "problem_ids": [1]}')
    with pytest.raises(SweepError, match="held_out\\.json: torn or edited"):
        drawn_hold_out(sweep, settings)
    external = SweepPlan(plan.settings, plan.arms, plan.train, plan.test, plan.held_out)
    record_held_out(sweep, external)
    assert json.loads(sweep.held_out_path.read_text()).get("question_groups") is None, "no groups for a benchmark"


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
    settings = SweepSettings(corpus=str(tmp_path), students=["student"], seeds=[1, 2])
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
                },
                "problem_ids": [f"q{i}" for i in range(questions)],
                "train_problem_ids": [],
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
    settings = SweepSettings(corpus=str(tmp_path), students=["s"])
    saved = settings.model_dump(mode="json")
    del saved["holdout_similarity"]
    (tmp_path / "sweep.json").write_text(json.dumps(saved))
    with pytest.raises(SweepError, match="near-variant"):
        claim(SweepDir(tmp_path), settings)


def test_a_student_named_by_its_gguf_file(tmp_path: Path) -> None:
    config = TrainConfig(model="/models/smol/SmolLM2.Q4.gguf", dataset="d")
    assert (config.student.model, config.student.gguf_file) == ("/models/smol", "SmolLM2.Q4.gguf")
    settings = SweepSettings(corpus="c", students=["/a/one.gguf", "/b/two.gguf", "hub/model"])
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
