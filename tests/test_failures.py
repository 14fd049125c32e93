"""Bad input gets a sentence that names the field or file, an exit code that tells the truth, and no lost work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.recipes.sources import SourceError, load_problems
from cotforge.schemas import AnswerType, SourceSpec, TeacherSpec


def _source(path: Path, rows: list) -> SourceSpec:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return SourceSpec(path=str(path), answer_type=AnswerType.number)


def test_repeated_rows_are_merged_and_conflicts_left_out(tmp_path: Path) -> None:
    rows = [{"question": f"q{i}?", "answer": i} for i in range(20)]
    rows += [{"question": "q3?", "answer": 3}, {"question": "q4?", "answer": 4}, {"question": "q5?", "answer": 99}]
    loaded = load_problems(_source(tmp_path / "p.jsonl", rows))
    assert loaded.merged == 2
    assert len(loaded.problems) == 19 and "q5?" not in {p.question for p in loaded.problems}
    assert [index for index, _ in loaded.invalid] == [5, 22]
    assert all("conflict" in why for _, why in loaded.invalid)
    assert len({p.id for p in loaded.problems}) == len(loaded.problems)


@pytest.mark.parametrize(
    ("value", "why"),
    [([1, 2], "a list"), ({"x": 1}, "an object"), (None, "null")],
)
def test_wrong_typed_gold_is_refused_with_the_row(tmp_path: Path, value: object, why: str) -> None:
    loaded = load_problems(
        _source(tmp_path / "p.jsonl", [{"question": "a?", "answer": 1}, {"question": "b?", "answer": value}])
    )
    assert len(loaded.problems) == 1 and loaded.invalid[0][0] == 1 and why in loaded.invalid[0][1]


def test_null_question_is_refused(tmp_path: Path) -> None:
    loaded = load_problems(
        _source(tmp_path / "p.jsonl", [{"question": "a?", "answer": 1}, {"question": None, "answer": 2}])
    )
    assert [p.question for p in loaded.problems] == ["a?"] and "null" in loaded.invalid[0][1]


@pytest.mark.parametrize(("name", "text"), [("p.jsonl", "5\n"), ("p.jsonl", "[1, 2]\n"), ("p.json", "[1, 2, 3]")])
def test_rows_that_are_not_objects_name_the_file(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SourceError, match=name):
        load_problems(SourceSpec(path=str(path), answer_type=AnswerType.number))


def test_a_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes('{"question": "caf\u00e9?", "answer": 1}\n'.encode("latin-1"))
    with pytest.raises(SourceError, match="UTF-8"):
        load_problems(SourceSpec(path=str(path), answer_type=AnswerType.number))


@pytest.mark.parametrize("url", ["not a url", "ftp://host/v1", "http//x"])
def test_base_url_is_validated(url: str) -> None:
    with pytest.raises(ValidationError, match="http"):
        TeacherSpec(model="m", base_url=url)
    result = CliRunner().invoke(app, ["build", "-d", "svamp", "-t", "m", "--sample", "--base-url", url, "--dry-run"])
    assert result.exit_code == 2 and "http" in result.output and "Traceback" not in result.output


@pytest.mark.integration
def test_repeated_questions_build_once_and_resume_to_nothing(tmp_path: Path, scripted) -> None:
    from .conftest import scripted_recipe, write_problems
    from .test_build import all_rows, build

    questions = [f"q{i} answer=5" for i in range(20)]
    problems = write_problems(tmp_path / "p.jsonl", [*questions, questions[3], questions[4], questions[5]])
    recipe = scripted_recipe(problems, scripted.url, granularities=[1, 2])
    first = build(recipe, tmp_path / "b")
    assert first.requested == 40 and first.accepted == 40 and first.pending == 0
    keys = [row.key for row in all_rows(tmp_path / "b")]
    assert len(keys) == len(set(keys)) == 40
    sent = len(scripted.answered())
    again = build(recipe, tmp_path / "b")
    assert (again.accepted, again.pending, len(scripted.answered())) == (40, 0, sent)
    assert sent == 40  # each distinct answer paid once
