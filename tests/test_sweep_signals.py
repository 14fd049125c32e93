"""The sweep report relates each arm's student accuracy to its corpus's signals: a hand-made sweep whose numbers are
known."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from cotforge.corpus import BuildDir
from cotforge.schemas.record import CoTRecord
from cotforge.sweeps import SweepSettings, build_report
from cotforge.sweeps.cells import CellResult
from cotforge.sweeps.signals import spearman, spearman_interval

from .helpers import made_record

LEVELS = (1, 2, 3, 4)


def _record(level: int, question: int) -> CoTRecord:
    # Level L answers L of its 4 questions right (teacher accuracy L / 4), with rationales growing with L.
    predicted = "5" if question < level else "6"
    rationale = " ".join(["step"] * (level * 10)) + f" for question {question}. The answer is {predicted}"
    return made_record(f"q{question}", f"g{level}-q{question}", predicted, rationale, level=level, steps=level)


def test_spearman_and_its_interval() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties take their mean rank: ranks 1, 2.5, 2.5, 4 against 1, 3, 2, 4 give 4.5 / sqrt(4.5 x 5).
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    low, high = spearman_interval([0.1, 0.4, 0.2, 0.5, 0.3, 0.6], [1, 4, 2, 5, 3, 6])
    assert low == high == pytest.approx(1.0)  # every resample keeps the order
    low, high = spearman_interval([0.1, 0.3, 0.2, 0.25, 0.05], [1, 2, 3, 4, 5])
    assert low < 0 < high  # a weak association over five arms: the interval holds 0


def test_the_sweep_report_relates_accuracy_to_the_corpus_signals(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    BuildDir(corpus).write_outputs([_record(level, q) for level in LEVELS for q in range(4)], [])
    sweep = tmp_path / "sweep"
    settings = SweepSettings(
        corpus=str(corpus),
        students=["s"],
        levels=list(LEVELS),
        baselines=False,
    )
    (sweep / "cells").mkdir(parents=True)
    (sweep / "sweep.json").write_text(settings.model_dump_json())
    held = {"check": {"training_problems": 4, "questions": 10}, "problem_ids": [f"q{i}" for i in range(10)]}
    (sweep / "held_out.json").write_text(json.dumps(held | {"train_problem_ids": ["t1", "t2", "t3", "t4"]}))
    student_accuracy = {1: 0.2, 2: 0.1, 3: 0.4, 4: 0.5}  # follows teacher accuracy but for levels 1 and 2
    for level, accuracy in student_accuracy.items():
        name = f"s--g{level}--seed1"
        (sweep / "cells" / name).mkdir()
        correct = round(accuracy * 10)
        pl.DataFrame({"correct": [True] * correct + [False] * (10 - correct)}).write_parquet(
            sweep / "cells" / name / "predictions.parquet"
        )
        cell = CellResult(
            name=name,
            student="s",
            arm=f"g{level}",
            subset=f"t-g{level}-cot",
            level=level,
            seed=1,
            steps=2,
            train_examples=4,
            completion_tokens=None,
            final_loss=None,
            mean_rationale_words=10.0 * level,
            accuracy=accuracy,
            interval=(0.0, 1.0),
            correct=correct,
            total=10,
            parsed=10,
            train_wall_s=0.0,
            eval_wall_s=0.0,
            predictions=f"cells/{name}/predictions.parquet",
        )
        (sweep / "cells" / name / "cell.json").write_text(cell.model_dump_json())

    report = build_report(sweep)
    assert report.signals is not None
    by_arm = {a.arm: a for a in report.signals.arms}
    assert by_arm["g3"].signals["teacher accuracy"] == 0.75 and by_arm["g3"].accuracy == 0.4
    assert by_arm["g1"].signals["mean rationale words"] < by_arm["g4"].signals["mean rationale words"]
    correlations = {c.signal: c for c in report.signals.correlations}
    teacher = correlations["teacher accuracy"]
    assert teacher.arms == 4 and teacher.spearman == pytest.approx(0.8)  # ranks 2,1,3,4 against 1,2,3,4
    assert teacher.interval is not None and teacher.interval[0] <= 0.8 <= teacher.interval[1]
    assert correlations["distinct-2"].arms == 4
    markdown = (sweep / "sweep_report.md").read_text()
    assert "## Student accuracy and the corpus's signals" in markdown
    assert "| s | teacher accuracy | 4 | +0.80 |" in markdown
    assert "not evidence that the signal causes the accuracy" in markdown
    saved = json.loads((sweep / "sweep_report.json").read_text())
    assert saved["signals"]["correlations"][0]["signal"] == "teacher accuracy"
