"""Teachers that answer in a schema: a custom prompt's pydantic model (or a recipe's field map, JSON schema or
dotted path) sent as response_format where the server takes one and in the prompt always; replies validated into
the model, the ones that do not kept aside with the validation error."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

import cotforge
from cotforge.cli import app
from cotforge.recipes.identity import recipe_digest
from cotforge.schemas.answer_format import AnswerFormat, AnswerFormatSpec
from cotforge.schemas.recipe import Recipe
from cotforge.schemas.teachers import parse_teacher

from .helpers import recipe_yaml, scripted_recipe, write_problems


class Measured(BaseModel):
    answer: int
    unit: str


REPLIES = {
    "good": '{"answer":5,"unit":"m"}',
    "missing": '{"answer":5}',
    "prose": "Five-metres.",
    "wrong-type": '{"answer":"five","unit":"m"}',
}


def _problems(tmp_path: Path) -> Path:
    return write_problems(tmp_path / "p.jsonl", [f"{name} object={reply}" for name, reply in REPLIES.items()])


def _asked(scripted) -> list:
    return [e for e in scripted.answered() if "Its JSON schema:" in e.message]


def test_a_custom_prompts_model_validates_each_reply_or_keeps_why(tmp_path: Path, scripted) -> None:
    seen: list[object] = []

    def parse(problem: object, found: Measured) -> str:
        seen.append(found)
        return str(found.answer)

    custom = cotforge.CustomPrompt("measure", lambda problem: problem.question, parse, answer_format=Measured)
    recipe = scripted_recipe(_problems(tmp_path), scripted.url)
    corpus = cotforge.build(recipe, tmp_path / "out", custom=custom)
    (record,) = corpus.records()
    assert Measured.model_validate_json(record.answer_object or "") == Measured(answer=5, unit="m")
    assert (
        record.predicted_answer == "5" and record.correct and record.prompt_version.startswith("custom-measure-1-json-")
    )
    assert seen and all(isinstance(found, Measured) for found in seen)  # parse gets the typed object
    why = {r.raw_response: r.detail for r in corpus.rejections()}
    assert {r.reason.value for r in corpus.rejections()} == {"schema_mismatch"}
    assert why[REPLIES["missing"]] == "unit: Field required"
    assert why[REPLIES["prose"]].startswith("not a JSON object")
    assert why[REPLIES["wrong-type"]].startswith("answer: Input should be a valid integer")
    sent = _asked(scripted)[0].params["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["required"] == ["answer", "unit"]
    frame = pl.read_parquet(next((tmp_path / "out" / "subsets").glob("*.parquet")))
    assert frame.schema["answer_object"] == pl.Utf8  # a datasets.load_dataset user sees the object's column


def test_a_recipe_asks_the_built_in_prompt_in_a_schema_from_yaml(tmp_path: Path, scripted) -> None:
    """A JSON schema with steps, sent as llama-cpp-python's json_object; the steps are the record's CoT."""
    reply = '{"steps":["3+2=5"],"answer":5}'
    problems = write_problems(tmp_path / "p.jsonl", [f"yaml object={reply}"])
    schema = {
        "type": "object",
        "properties": {"steps": {"type": "array", "items": {"type": "string"}}, "answer": {"type": "integer"}},
        "required": ["steps", "answer"],
    }
    answer_format = {"model": schema, "structured_output": "json_object"}
    recipe = scripted_recipe(problems, scripted.url, answer_format=answer_format)
    path = recipe_yaml(tmp_path / "recipe.yaml", recipe)
    result = CliRunner().invoke(app, ["build", "--recipe", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (record,) = cotforge.open_build(tmp_path / "out").records()
    assert record.rationale == "3+2=5\nThe answer is 5" and record.steps == ["3+2=5"]
    assert record.answer_source is not None and record.answer_source.value == "schema"
    (asked,) = _asked(scripted)
    resolved = recipe.answer_format.resolved()  # type: ignore[union-attr]
    assert asked.params["response_format"] == {"type": "json_object", "schema": resolved.schema}
    assert record.prompt_version.endswith(f"-json-{resolved.digest}")
    assert "The answer is" in asked.chat and asked.message.endswith(resolved.instruction())  # built-in, then schema


def test_field_maps_schemas_and_dotted_paths_resolve_or_say_what_is_wrong(tmp_path: Path) -> None:
    short = AnswerFormatSpec.model_validate({"answer": "int", "unit": "str"}).resolved()
    path = AnswerFormatSpec.model_validate("tests.test_answer_format:Measured").resolved()
    assert short.model.model_json_schema()["properties"].keys() == Measured.model_json_schema()["properties"].keys()
    assert path.model is Measured
    for bad, says in (
        ({"answer": "decimal"}, "answer_format.answer: 'decimal' is not a type"),
        ({"unit": "str"}, "the model has no 'answer' field"),
        ("nowhere.models:Answer", "cannot import 'nowhere.models:Answer'"),
        ({"type": "object", "properties": {"answer": {"type": "null"}}}, "JSON schema type 'null' is not one"),
        # Values of the wrong shape: a sentence, never a TypeError the recipe loader would not catch.
        ({"answer": {"type": "integer"}}, r"answer_format.answer: \{'type': 'integer'\} is not a type"),
        ({"properties": {"answer": {"type": ["string", "null"]}}}, r"JSON schema type \['string', 'null'\]"),
        ({"properties": {"answer": {"enum": [[1]]}}}, "answer_format.answer: enum is a non-empty list"),
        ({"properties": {"answer": {"enum": []}}}, "answer_format.answer: enum is a non-empty list"),
        ({"properties": {"answer": {"type": "array", "items": "int"}}}, "answer_format.answer.items: JSON schema"),
        ({"properties": {"answer": {"type": "integer"}}, "required": [{}]}, "required is a list of field names"),
    ):
        with pytest.raises(ValueError, match=says):
            AnswerFormatSpec.model_validate(bad)
    base = scripted_recipe(write_problems(tmp_path / "p.jsonl", ["q"]), "http://127.0.0.1:1/v1")
    asked = Recipe.model_validate(base.model_dump() | {"answer_format": {"answer": "int"}})
    assert recipe_digest(base) != recipe_digest(asked)  # another build folder; a recipe without one keeps its own
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(bad_yaml_text(base))
    result = CliRunner().invoke(app, ["build", "--recipe", str(bad_yaml), "--dry-run"])
    assert result.exit_code == 2 and "answer_format.answer" in result.output and "Traceback" not in result.output


def bad_yaml_text(recipe: Recipe) -> str:
    import yaml

    data = recipe.model_dump(mode="json", exclude_defaults=True) | {"answer_format": {"answer": "decimal"}}
    return yaml.safe_dump(data)


def test_the_schema_goes_in_the_body_only_where_the_backend_takes_it() -> None:
    asked = AnswerFormat(Measured)
    openai = asked.teacher(parse_teacher("gpt-4o-mini"))
    assert openai.extra_body["response_format"]["json_schema"]["schema"] == Measured.model_json_schema()
    claude = asked.teacher(parse_teacher("anthropic:claude-3-5-haiku-latest"))
    assert "response_format" not in claude.extra_body
    assert AnswerFormat(Measured, "prompt").teacher(parse_teacher("gpt-4o-mini")).extra_body == {}


@pytest.mark.integration
def test_the_real_smollm2_teacher_answers_in_a_schema_through_llama_cpp(tmp_path: Path) -> None:
    """SmolLM2-135M's answers are mostly wrong; what this shows is the real path: llama-cpp-python's grammar holds
    each reply to the schema's shape, and each is validated into the model."""
    from .local_teacher import llama_server, require_local_teacher

    gguf = require_local_teacher()
    questions = ["Tom has 3 apples and gets 2 more. How many apples?", "A box holds 4 pens; 2 boxes hold how many?"]
    problems = write_problems(tmp_path / "p.jsonl", questions)
    with llama_server(gguf) as url:
        custom = cotforge.CustomPrompt(
            "measure", lambda p: p.question, answer_format=Measured, structured_output="json_object"
        )
        teacher = {"model": "smollm2-135m-instruct", "base_url": url, "max_retries": 1, "timeout_s": 120}
        recipe = scripted_recipe(problems, url, teacher=teacher, sampling={"max_tokens": 48, "temperature": 0.0})
        corpus = cotforge.build(recipe, tmp_path / "out", custom=custom)
    records, rejections = corpus.records(), corpus.rejections()
    assert len(records) + len(rejections) == 2
    assert all(Measured.model_validate_json(r.answer_object or "") for r in records)
    assert all(r.reason.value in ("schema_mismatch", "truncated") for r in rejections)
    assert records, "the grammar holds the reply to the schema's shape"
