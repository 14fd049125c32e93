from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cotforge.recipes import RecipeError, apply_overrides, builtin_recipes, load_recipe
from cotforge.recipes.sources import BUILTIN_SOURCES
from cotforge.schemas import CoTFormat

from .helpers import FIXTURES

RECIPES = FIXTURES / "recipes"


def test_every_builtin_recipe_loads() -> None:
    names = builtin_recipes()
    assert set(BUILTIN_SOURCES) <= set(names), "one built-in recipe per paper data set"
    for name in names:
        recipe = load_recipe(name)
        assert recipe.teachers and recipe.sources


def test_paper_grid_is_the_full_grid() -> None:
    grid = load_recipe("paper-grid")
    assert {s.dataset for s in grid.sources} == set(BUILTIN_SOURCES)
    assert grid.granularities == [1, 2, 3, 4, 5, 6]
    assert set(grid.formats) == set(CoTFormat)


def test_good_recipe_file() -> None:
    recipe = load_recipe(RECIPES / "good.yaml")
    assert recipe.name == "svamp-small"
    assert recipe.sampling.n == 2
    assert recipe.formats == [CoTFormat.cot, CoTFormat.symbolic]


def test_overrides_replace_fields_and_revalidate() -> None:
    recipe = load_recipe(RECIPES / "good.yaml")
    changed = apply_overrides(
        recipe,
        {"teachers": ["openai-batch:gpt-4o"], "granularities": [5], "sampling": {"temperature": 0.1}, "limit": None},
    )
    assert changed.teachers[0].backend == "openai-batch"
    assert changed.granularities == [5]
    assert changed.sampling.temperature == 0.1 and changed.sampling.n == 2  # untouched fields stay
    with pytest.raises(RecipeError, match=r"granularities\[0\]"):
        apply_overrides(recipe, {"granularities": [8]})


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("level9.yaml", "granularities[1]", "less than or equal to 6"),
        ("unknown_key.yaml", "temprature", "Extra inputs are not permitted"),
        ("wrong_type.yaml", "sampling.max_tokens", "valid integer"),
    ],
)
def test_malformed_recipe_errors_name_the_field(name: str, field: str, expected: str) -> None:
    with pytest.raises(RecipeError) as caught:
        load_recipe(RECIPES / name)
    message = str(caught.value)
    assert name in message and field in message and expected in message


def test_malformed_recipe_cli_one_screen_exit_2() -> None:
    path = RECIPES / "level9.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "cotforge", "build", "--recipe", str(path), "--dry-run", "--sample"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "granularities[1]" in result.stderr and "level9.yaml" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.splitlines()) < 25


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsources: [svamp\n")
    with pytest.raises(RecipeError, match=r"broken.yaml: line \d+"):
        load_recipe(path)


def test_missing_recipe() -> None:
    with pytest.raises(RecipeError, match="no such recipe"):
        load_recipe("no-such-recipe")
