from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.schemas import (
    SCHEMAS,
    AnswerType,
    BuildReport,
    Problem,
    Recipe,
    RejectionReason,
    SamplingParams,
    SourceSpec,
    TeacherBackend,
    TeacherSpec,
)


def problem(**changes) -> Problem:
    base = dict(id="p1", dataset="d", split="train", question="2+2?", answer="4", answer_type=AnswerType.number)
    return Problem(**{**base, **changes})


def test_problem_rejects_empty_question() -> None:
    with pytest.raises(ValidationError, match="question"):
        problem(question="   ")


def test_choice_answer_must_be_among_choices() -> None:
    ok = problem(answer_type=AnswerType.choice, choices=["x", "y", "z"], answer="C")
    assert ok.choice_labels == "ABC"
    with pytest.raises(ValidationError, match="not among the choice labels A, B, C"):
        problem(answer_type=AnswerType.choice, choices=["x", "y", "z"], answer="D")


def test_boolean_and_number_answers_are_checked() -> None:
    with pytest.raises(ValidationError, match="True"):
        problem(answer_type=AnswerType.boolean, answer="maybe")
    with pytest.raises(ValidationError, match="numeric"):
        problem(answer="four")


def test_choices_only_for_choice_problems() -> None:
    with pytest.raises(ValidationError, match="only allowed"):
        problem(choices=["a", "b"])


def test_student_prompt_lays_out_choices_as_the_paper() -> None:
    p = problem(answer_type=AnswerType.choice, choices=["red", "blue"], answer="B", question="Sky colour?")
    assert p.student_prompt() == "Q: Sky colour? Answer choices: A: red, B: blue"


@pytest.mark.parametrize("levels", [[7], [-1], [1, 1]])
def test_recipe_rejects_bad_granularities(levels: list[int]) -> None:
    with pytest.raises(ValidationError, match="granularities"):
        Recipe(sources=["svamp"], teachers=["gpt-4o"], granularities=levels)


def test_recipe_rejects_unknown_format_and_dataset() -> None:
    with pytest.raises(ValidationError, match="formats"):
        Recipe(sources=["svamp"], teachers=["gpt-4o"], formats=["tree"])
    with pytest.raises(ValidationError, match="unknown dataset 'mnist'"):
        Recipe(sources=["mnist"], teachers=["gpt-4o"])


@pytest.mark.parametrize("field", ["max_cost_usd", "limit"])
def test_recipe_rejects_negative_budgets(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Recipe(sources=["svamp"], teachers=["gpt-4o"], **{field: -1})
    with pytest.raises(ValidationError):
        SamplingParams(max_tokens=-5)


def test_teacher_strings() -> None:
    assert TeacherSpec.parse("gpt-4o").backend is TeacherBackend.openai
    batch = TeacherSpec.parse("openai-batch:gpt-4o")
    assert (batch.backend, batch.model, batch.label) == (TeacherBackend.openai_batch, "gpt-4o", "gpt-4o")
    local = TeacherSpec.parse("vllm:Qwen/Qwen2.5-7B-Instruct")
    assert (local.backend, local.label) == (TeacherBackend.vllm, "qwen2.5-7b-instruct")
    with pytest.raises(ValidationError, match="label"):
        TeacherSpec(model="m", label="Has Spaces")


def test_duplicate_teacher_labels_rejected() -> None:
    with pytest.raises(ValidationError, match="unique"):
        Recipe(sources=["svamp"], teachers=["gpt-4o", "openai-batch:gpt-4o"])


def test_user_source_needs_answer_type_and_known_fields() -> None:
    with pytest.raises(ValidationError, match="answer_type is required"):
        SourceSpec(path="x.jsonl")
    with pytest.raises(ValidationError, match="unknown field mapping keys: bogus"):
        SourceSpec(path="x.jsonl", answer_type="number", fields={"bogus": "q"})
    with pytest.raises(ValidationError, match="exactly one"):
        SourceSpec(dataset="svamp", path="x.jsonl")


def test_build_report_counts_must_add_up() -> None:
    BuildReport(recipe="r", requested=5, accepted=3, rejected={RejectionReason.truncated: 1}, failed=1)
    with pytest.raises(ValidationError, match="requested"):
        BuildReport(recipe="r", requested=5, accepted=3, rejected={}, failed=1)
    with pytest.raises(ValidationError, match="failed"):
        BuildReport(recipe="r", requested=1, accepted=0, rejected={RejectionReason.api_error: 1}, failed=0)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_command_prints_json_schema(name: str) -> None:
    result = CliRunner().invoke(app, ["schema", name])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["title"] == SCHEMAS[name].__name__
    assert schema["properties"]


def test_schema_command_unknown_name() -> None:
    result = CliRunner().invoke(app, ["schema", "nope"])
    assert result.exit_code == 2
    assert "unknown schema" in result.output
