from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from cotforge.recipes.sources import BUILTIN_SOURCES, SourceError, load_problems
from cotforge.recipes.sources.builtin import aqua, gsm8k, math, openbookqa, strategyqa, svamp
from cotforge.recipes.sources.rows import sample_rows
from cotforge.schemas import AnswerType, SourceSpec

EXPECTED_TYPES = {
    "gsm8k": AnswerType.number,
    "svamp": AnswerType.number,
    "aqua": AnswerType.choice,
    "math": AnswerType.expression,
    "csqa": AnswerType.choice,
    "obqa": AnswerType.choice,
    "strategyqa": AnswerType.boolean,
}


@pytest.mark.parametrize("name", sorted(BUILTIN_SOURCES))
def test_builtin_samples_load_into_problems(name: str) -> None:
    loaded = load_problems(SourceSpec(dataset=name), sample=True)
    assert loaded.invalid == []
    assert len(loaded.problems) >= 25
    assert {p.answer_type for p in loaded.problems} == {EXPECTED_TYPES[name]}
    ids = [p.id for p in loaded.problems]
    assert len(set(ids)) == len(ids), "ids must be unique"
    # Stable: loading again gives the same ids.
    assert [p.id for p in load_problems(SourceSpec(dataset=name), sample=True).problems] == ids


def test_gsm8k_gold_after_hashes_and_solution_kept() -> None:
    row = sample_rows("gsm8k")[0]
    p = gsm8k(row, "train")
    assert p.answer == "72"
    assert p.human_rationale.startswith("Natalia sold 48/2 = <<48/2=24>>24 clips")
    with pytest.raises(ValueError, match="####"):
        gsm8k({"question": "q", "answer": "no marker"}, "train")


def test_gsm8k_gold_with_commas() -> None:
    assert gsm8k({"question": "q", "answer": "so\n#### 1,234"}, "test").answer == "1234"


def test_svamp_float_answer_and_equation() -> None:
    p = svamp(sample_rows("svamp")[0], "train")
    assert p.answer == "145"
    assert p.question.startswith("There are 87 oranges") and p.question.endswith("bananas?")
    assert p.human_rationale == "( 290.0 / 2.0 ) = 145"


def test_aqua_options_and_bad_option() -> None:
    row = {"question": "q", "options": ["A)1", "B)2", "C)3", "D)4", "E)5"], "rationale": "r", "correct": "C"}
    p = aqua(row, "train")
    assert p.choices == ["1", "2", "3", "4", "5"] and p.answer == "C"
    with pytest.raises(ValueError, match="should start with 'B\\)'"):
        aqua({**row, "options": ["A)1", "X)2"]}, "train")


def test_math_boxed_gold() -> None:
    row = {"problem": "p", "level": "Level 1", "type": "Algebra", "solution": "So $x=\\boxed{\\frac{1}{2}}$."}
    assert math(row, "test").answer == "\\frac{1}{2}"
    with pytest.raises(ValueError, match="boxed"):
        math({**row, "solution": "no box"}, "test")


def test_openbookqa_numeric_labels_map_to_letters() -> None:
    row = {
        "id": "7",
        "question_stem": "q",
        "choices": {"text": ["a", "b", "c", "d"], "label": ["1", "2", "3", "4"]},
        "answerKey": "3",
    }
    assert openbookqa(row, "train").answer == "C"


def test_strategyqa_boolean_and_facts() -> None:
    row = {"qid": "x1", "question": "Is water wet?", "answer": True, "facts": ["Water is a liquid.", "It wets."]}
    p = strategyqa(row, "train")
    assert p.answer == "True" and p.human_rationale == "Water is a liquid. It wets."
    with pytest.raises(ValueError, match="boolean"):
        strategyqa({**row, "answer": "yes"}, "train")


def _user_rows() -> list[dict]:
    return [
        {"q": "What is 2 + 3?", "a": "5", "uid": "u1"},
        {"q": "What is 10 / 4?", "a": "2.5", "uid": "u2"},
        {"q": "", "a": "1", "uid": "u3"},  # invalid: empty question
        {"q": "Half of 9?", "a": "four and a half", "uid": "u4"},  # invalid: not a number
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".csv"])
def test_local_file_with_field_mapping(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"mine{suffix}"
    frame = pl.DataFrame(_user_rows())
    if suffix == ".jsonl":
        frame.write_ndjson(path)
    elif suffix == ".json":
        path.write_text(json.dumps(_user_rows()))
    elif suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)
    spec = SourceSpec(path=str(path), answer_type="number", fields={"question": "q", "answer": "a", "id": "uid"})
    loaded = load_problems(spec)
    assert [p.id for p in loaded.problems] == ["mine-train-u1", "mine-train-u2"]
    assert [p.answer for p in loaded.problems] == ["5", "2.5"]
    assert [i for i, _ in loaded.invalid] == [2, 3], "bad rows are reported, not dropped silently"
    assert "question" in loaded.invalid[0][1]


def test_local_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        load_problems(SourceSpec(path=str(tmp_path / "absent.jsonl"), answer_type="number"))
    path = tmp_path / "cols.jsonl"
    path.write_text('{"text": "x", "label": 1}\n')
    with pytest.raises(SourceError, match=r"cols.jsonl: missing column\(s\) answer, question"):
        load_problems(SourceSpec(path=str(path), answer_type="number"))
    bad = tmp_path / "data.txt"
    bad.write_text("x")
    with pytest.raises(SourceError, match="unsupported file type"):
        load_problems(SourceSpec(path=str(bad), answer_type="number"))


def test_choice_mapping_with_index_and_text_answers(tmp_path: Path) -> None:
    path = tmp_path / "mc.jsonl"
    rows = [
        {"question": "Pick b", "choices": ["a", "b", "c"], "answer": 1},
        {"question": "Pick c", "choices": {"label": ["A", "B", "C"], "text": ["a", "b", "c"]}, "answer": "C"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    spec = SourceSpec(path=str(path), answer_type="choice", fields={"choices": "choices"})
    assert [p.answer for p in load_problems(spec).problems] == ["B", "C"]


def test_hub_loader_reads_through_datasets(tmp_path: Path) -> None:
    # `datasets.load_dataset` takes a local folder exactly as it takes a Hub id: the real loading code runs.
    folder = tmp_path / "my-hub-dataset" / "data"
    folder.mkdir(parents=True)
    pl.DataFrame(sample_rows("svamp")).write_parquet(folder / "train-00000-of-00001.parquet")
    spec = SourceSpec(
        hub_id=str(folder.parent),
        answer_type="number",
        fields={"question": "question_concat", "answer": "Answer", "id": "ID"},
    )
    loaded = load_problems(spec, limit=5)
    assert len(loaded.problems) == 5
    assert loaded.problems[0].answer == "145"


def test_hub_loader_error_names_the_id() -> None:
    with pytest.raises(SourceError, match="does-not/exist-here"):
        load_problems(SourceSpec(hub_id="/does-not/exist-here", answer_type="number"))


def test_limit_counts_valid_problems() -> None:
    assert len(load_problems(SourceSpec(dataset="gsm8k"), sample=True, limit=3).problems) == 3
