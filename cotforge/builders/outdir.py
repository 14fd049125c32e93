"""Checks before a build asks anything: the output folder belongs to this recipe and can be written, and a
recipe built with a Python prompt is marked with it."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from cotforge.builders.custom import CustomPrompt
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.recipes.identity import differences, extend_recipe, identity
from cotforge.recipes.loader import RecipeError
from cotforge.schemas.recipe import Recipe


def check_build_dir(out_dir: Path, recipe: Recipe, extend: bool = False) -> Recipe:
    """The recipe to build in `out_dir`, read-only: `recipe` itself, or with `extend` the directory's recipe grown
    by it. A directory belongs to one recipe, so another recipe there is refused (BuildDirError) rather than
    overwriting its outputs; so is an empty store beside finished outputs, which would ask for everything again."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BuildDirError(f"{out_dir}: is a file; --out must be a folder (new or a build directory)")
    build_dir = BuildDir(out_dir)
    store = build_dir.store_path
    if store.exists() and store.stat().st_size == 0 and build_dir.report_path.exists():
        wal = Path(f"{store}-wal")
        if not wal.exists() or wal.stat().st_size == 0:
            raise BuildDirError(
                f"{store}: is empty, but {out_dir} holds a finished build's outputs; a new build would ask for every "
                f"answer again. Restore the store from a copy, or run `cotforge salvage {out_dir}` to rebuild it "
                "from the Parquet outputs"
            )
    old = build_dir.read_recipe()
    if old is None:
        return recipe
    if identity(old) == identity(recipe):
        return recipe
    if not extend:
        raise BuildDirError(
            f"{out_dir} holds the build of another recipe ({'; '.join(differences(old, recipe))}). "
            "Give another --out, or --extend to add this recipe's answers to that build"
        )
    try:
        return extend_recipe(old, recipe)
    except RecipeError as error:
        raise BuildDirError(f"{out_dir}: {error}") from None


def check_writable(out_dir: Path) -> None:
    """Fail before the first request, not at the export after paying for every answer."""
    probe = BuildDir(out_dir).subsets_dir / ".cotforge-write-test"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise BuildDirError(f"{out_dir}: cannot write the build here ({error.strerror}); give another --out") from None


def with_custom_prompt(recipe: Recipe, custom: CustomPrompt | None) -> Recipe:
    """The recipe marked with the custom prompt it is built with; a recipe so marked needs that prompt."""
    if custom is None:
        if recipe.custom_prompt is not None:
            raise RecipeError(
                f"recipe {recipe.name!r} asks the Python prompt {recipe.custom_prompt}: build it with "
                "cotforge.build(..., custom=CustomPrompt(...)) from Python"
            )
        return recipe
    try:
        return Recipe.model_validate(recipe.model_dump() | {"custom_prompt": custom.prompt_version})
    except ValidationError as error:
        raise RecipeError(str(error).splitlines()[2].strip()) from None
