from __future__ import annotations

import json
from pathlib import Path

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
)
from cotforge.schemas.recipe import OpenAITeacherSpec, parse_teacher


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
    assert parse_teacher("gpt-4o").backend == "openai"
    batch = parse_teacher("openai-batch:gpt-4o")
    assert (batch.backend, batch.model, batch.label) == ("openai-batch", "gpt-4o", "gpt-4o")
    local = parse_teacher("vllm:Qwen/Qwen2.5-7B-Instruct")
    assert (local.backend, local.label) == ("vllm", "qwen2.5-7b-instruct")
    claude = parse_teacher("anthropic:claude-sonnet-4-5")
    assert (claude.backend, claude.label, claude.api_key_env) == ("anthropic", "claude-sonnet-4-5", "ANTHROPIC_API_KEY")
    with pytest.raises(ValidationError, match="label"):
        OpenAITeacherSpec(model="m", label="Has Spaces")


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
    if name == "teacher":  # one member per backend, chosen by `backend`
        assert {"OpenAITeacherSpec", "OpenAIBatchTeacherSpec", "VLLMTeacherSpec", "RayTeacherSpec"} <= set(
            schema["$defs"]
        )
        return
    assert schema["title"] == SCHEMAS[name].__name__
    assert schema["properties"]


def test_schema_command_unknown_name() -> None:
    result = CliRunner().invoke(app, ["schema", "nope"])
    assert result.exit_code == 2
    assert "unknown schema" in result.output


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"ray": {"replicas": 4}}, "ray"),
        ({"tensor_parallel_size": 8}, "tensor_parallel_size"),
        ({"engine_args": {"max_model_len": 4096}}, "engine_args"),
    ],
)
def test_an_openai_teacher_refuses_another_backends_options(options: dict, named: str) -> None:
    recipe = {"sources": ["svamp"], "teachers": [{"model": "gpt-4o", **options}]}
    with pytest.raises(ValidationError, match=rf"{named}: not an option of an openai teacher"):
        Recipe.model_validate(recipe)


def test_each_backend_takes_its_own_options_and_tensor_parallel_size_lives_in_engine_args() -> None:
    ray = parse_teacher("ray:m").model_validate({"model": "m", "ray": {"replicas": 4}})
    assert ray.ray.replicas == 4
    with pytest.raises(ValidationError, match=r"tensor_parallel_size: not an option of a vllm teacher.*engine_args"):
        Recipe.model_validate(
            {"sources": ["svamp"], "teachers": [{"model": "m", "backend": "vllm", "tensor_parallel_size": 2}]}
        )
    with pytest.raises(ValidationError, match=r"max_concurrency: not an option of a vllm teacher.*openai"):
        Recipe.model_validate(
            {"sources": ["svamp"], "teachers": [{"model": "m", "backend": "vllm", "max_concurrency": 2}]}
        )
    vllm = Recipe.model_validate(
        {
            "sources": ["svamp"],
            "teachers": [{"model": "m", "backend": "vllm", "engine_args": {"tensor_parallel_size": 2}}],
        }
    ).teachers[0]
    assert vllm.engine_args.given() == {"tensor_parallel_size": 2}


def test_a_misplaced_option_is_a_sentence_naming_the_field(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("sources: [svamp]\nteachers:\n  - model: gpt-4o\n    ray: {replicas: 4}\n")
    result = CliRunner().invoke(app, ["build", "--recipe", str(recipe), "--sample", "--dry-run"])
    assert result.exit_code == 2 and "ray: not an option of an openai teacher" in result.output, result.output
    assert "Traceback" not in result.output
