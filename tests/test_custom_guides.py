"""Your own level guides and demonstration (item 6 of #25): in the recipe or a file next to it, checked like the
built-in ones, and part of every prompt's version."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.recipes.identity import recipe_digest
from cotforge.recipes.loader import load_recipe
from cotforge.recipes.prompts import build_prompt, prompt_version
from cotforge.schemas import AnswerType, CoTFormat, CoTRecord, PromptMode
from cotforge.schemas.guides import CustomGuides
from cotforge.schemas.tables import read_parquet

from .helpers import recipe_yaml, scripted_recipe, write_problems

CODE_GUIDES = {
    "name": "code",
    "answer_form": "the number the program prints, alone",
    "levels": {
        1: "Level 1 of 2 for code: name the construct that decides the output, nothing more.",
        2: "Level 2 of 2 for code: trace the program line by line, with each variable's value after each line.",
    },
    "demonstration": {
        "question": "What does `x = 2; x *= 3; print(x + 1)` print?",
        "answer": "7",
        "by_level": {
            1: "Multiplication then addition.",
            2: "x starts at 2. x *= 3 makes x = 6. print(x + 1) prints 6 + 1 = 7.",
        },
    },
}


def test_a_recipe_with_its_own_guides_builds_with_them(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["what prints? answer=5", "and now? answer=5"])
    (tmp_path / "code-guides.yaml").write_text(yaml.safe_dump(CODE_GUIDES))
    recipe = recipe_yaml(tmp_path / "r.yaml", scripted_recipe(problems, scripted.url, granularities=[1, 2]))
    recipe.write_text(recipe.read_text() + "guides: code-guides.yaml\n")
    result = CliRunner().invoke(app, ["build", "--recipe", str(recipe), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    records = [r for path in (tmp_path / "out" / "subsets").iterdir() for r in read_parquet(path, CoTRecord)]
    assert len(records) == 4 and all(r.correct for r in records)
    for record in records:
        system, demo_question, demo_answer, question = record.messages_sent
        assert question.content.startswith(("what prints", "and now"))
        assert CODE_GUIDES["levels"][record.granularity] in system.content
        assert "the number the program prints, alone" in system.content
        assert demo_question.content == CODE_GUIDES["demonstration"]["question"]
        body = CODE_GUIDES["demonstration"]["by_level"][record.granularity]
        assert demo_answer.content == f"{body}\nThe answer is 7"
        assert "Youngsville" not in system.content + demo_question.content, "no built-in demonstration"
    sent = [e.chat for e in scripted.answered()]
    assert len(sent) == 4 and all("trace the program line by line" in c or "name the construct" in c for c in sent)
    # The guides are part of the prompt's version and the recipe's identity; the build keeps them in recipe.yaml.
    built_in = prompt_version(AnswerType.number, 2, CoTFormat.cot, PromptMode.blind)
    versions = {r.granularity: r.prompt_version for r in records}
    assert versions[2] != built_in and versions[1] != versions[2]
    stored = load_recipe(tmp_path / "out" / "recipe.yaml")
    assert stored.guides == CustomGuides.model_validate(CODE_GUIDES)
    changed = CODE_GUIDES | {"levels": CODE_GUIDES["levels"] | {2: "Level 2: trace every line."}}
    other = stored.model_copy(update={"guides": CustomGuides.model_validate(changed)})
    assert recipe_digest(other) != recipe_digest(stored)
    problem = records[0].problem()
    assert build_prompt(problem, 2, CoTFormat.cot, PromptMode.blind, other.guides).prompt_version != versions[2]
    rerun = CliRunner().invoke(app, ["build", "--recipe", str(recipe), "-o", str(tmp_path / "out")])
    assert rerun.exit_code == 0, rerun.output
    assert len(scripted.answered()) == 4, "a resume with the same guides asks nothing again"


@pytest.mark.parametrize(
    ("change", "field", "phrase"),
    [
        ({"levels": {1: " ", 2: "x"}}, "levels", "level 1: the guide is blank"),
        ({"levels": {1: "a", 2: "b", 3: "c"}}, "(top level)", "no rationale for level 3"),
        (
            {"demonstration": CODE_GUIDES["demonstration"] | {"by_level": {1: "a b c", 2: "a b"}}},
            "demonstration.by_level",
            "a higher level must be longer",
        ),
        (
            {"demonstration": CODE_GUIDES["demonstration"] | {"by_level": {1: "x", 2: "y z.\nThe answer is 7"}}},
            "demonstration.by_level",
            "leave out 'The answer is ...'",
        ),
        ({"levels": {9: "a"}}, "levels", "levels run from 0"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_guides_file_is_refused_naming_file_and_field(
    tmp_path: Path, change: dict, field: str, phrase: str
) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    guides = tmp_path / "bad-guides.yaml"
    guides.write_text(yaml.safe_dump(CODE_GUIDES | change))
    recipe = recipe_yaml(tmp_path / "r.yaml", scripted_recipe(problems, "http://127.0.0.1:9/v1", granularities=[1]))
    recipe.write_text(recipe.read_text() + "guides: bad-guides.yaml\n")
    result = CliRunner().invoke(app, ["build", "--recipe", str(recipe), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert f"{guides}: invalid guides" in result.output and f"{field}: " in result.output
    assert phrase in result.output and "Traceback" not in result.output


def test_a_build_is_not_extended_with_other_guides(tmp_path: Path) -> None:
    from cotforge.recipes.identity import extend_recipe
    from cotforge.recipes.loader import RecipeError

    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    guided = scripted_recipe(problems, "http://127.0.0.1:9/v1", granularities=[1], guides=CODE_GUIDES)
    with pytest.raises(RecipeError, match="cannot extend: guides"):
        extend_recipe(guided, scripted_recipe(problems, "http://127.0.0.1:9/v1", granularities=[1]))
    assert extend_recipe(guided, guided).guides == guided.guides


def test_guides_must_cover_the_levels_asked_and_only_direct_prompts(tmp_path: Path) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    with pytest.raises(ValidationError, match=r"guides\.levels has no guide for level 4"):
        scripted_recipe(problems, "http://127.0.0.1:9/v1", granularities=[1, 4], guides=CODE_GUIDES)
    with pytest.raises(ValidationError, match="rewrite mode and the native arm use the built-in prompts"):
        scripted_recipe(problems, "http://127.0.0.1:9/v1", granularities=[1], guides=CODE_GUIDES, native=True)
    recipe = recipe_yaml(tmp_path / "r.yaml", scripted_recipe(problems, "http://127.0.0.1:9/v1"))
    recipe.write_text(recipe.read_text() + "guides: missing.yaml\n")
    result = CliRunner().invoke(app, ["build", "--recipe", str(recipe), "--dry-run"])
    assert result.exit_code == 2 and "guides: no such file" in result.output and "missing.yaml" in result.output
