"""Recipes: YAML files validated into a Recipe, the built-in ones, and command-line overrides."""

from cotforge.recipes.loader import RecipeError, apply_overrides, builtin_recipes, load_recipe, resolve_recipe

__all__ = ["RecipeError", "apply_overrides", "builtin_recipes", "load_recipe", "resolve_recipe"]
