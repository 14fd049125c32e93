"""When two recipes make the same corpus, and how one build directory's recipe grows by another.

A build directory belongs to one recipe. What changes the answers (sources, teachers, levels, formats, modes,
sampling, limit, keep) is the recipe's identity; how they are fetched (concurrency, timeouts, retries, rate
limits, prices, the key's variable) and its name, description and budget are not, so a resume may change those.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cotforge.recipes.loader import RecipeError, parse_recipe
from cotforge.safety.redact import HIDDEN, redact_url
from cotforge.schemas.recipe import Recipe

# max_answer_chars is a guard, like the budget: leaving it out keeps every existing build's digest.
# judge: judging reads the answers and changes none.
_NOT_IDENTITY = {"name", "description", "max_cost_usd", "max_answer_chars", "judge"}
_TRANSPORT = {
    "api_key_env",
    "max_concurrency",
    "rpm",
    "tpm",
    "timeout_s",
    "max_retries",
    "retry_backoff_s",
    "batch_poll_s",
    "tensor_parallel_size",
    "engine_args",
    "ray",
    "input_price_per_mtok",
    "output_price_per_mtok",
}
_LISTS = ("sources", "granularities", "formats", "condensed")  # teachers are merged by label
_MUST_MATCH = ("sampling", "prompt_mode", "format_mode", "keep", "guides", "until_correct", "max_attempts")


# Reasoning options count where set; left out at their defaults, so older recipes keep their identity.
_REASONING = ("reasoning_effort", "extra_body", "capabilities")


def _teacher_identity(teacher: dict[str, Any]) -> dict[str, Any]:
    found = {k: v for k, v in teacher.items() if k not in _TRANSPORT and not (k in _REASONING and not v)}
    if found.get("base_url"):  # recipe.yaml stores it redacted: a resume compares the redacted forms
        found["base_url"] = redact_url(found["base_url"])
    return found


def identity(recipe: Recipe) -> dict[str, Any]:
    """The fields that decide which answers a recipe asks for."""
    data = recipe.model_dump(mode="json", exclude=_NOT_IDENTITY)
    data["teachers"] = [_teacher_identity(t) for t in data["teachers"]]
    # Fields added later are left out unless set: older recipes keep their identity (and build folders).
    for added_later in (
        "native",
        "condensed",
        "custom_prompt",
        "guides",
        "until_correct",
        "max_attempts",
        "answer_format",
    ):
        if not data[added_later]:
            del data[added_later]
    return data


def recipe_digest(recipe: Recipe) -> str:
    """Eight hex digits of the recipe's identity: the default build directory's suffix."""
    return hashlib.sha256(json.dumps(identity(recipe), sort_keys=True).encode()).hexdigest()[:8]


def differences(old: Recipe, new: Recipe) -> list[str]:
    """'field: old -> new' for each identity field that differs."""
    a, b = identity(old), identity(new)
    keys = [*a, *(key for key in b if key not in a)]  # a field left out at its default is in one of them only
    return [f"{key}: {json.dumps(a.get(key))} -> {json.dumps(b.get(key))}" for key in keys if a.get(key) != b.get(key)]


def _union(first: list[Any], second: list[Any]) -> list[Any]:
    return first + [item for item in second if item not in first]


def extend_recipe(old: Recipe, new: Recipe) -> Recipe:
    """One recipe asking for both recipes' answers: their sources, teachers, levels and formats together. Raises
    RecipeError where no such recipe exists (different sampling or modes make a different corpus)."""
    a, b = identity(old), identity(new)
    clashing = [key for key in _MUST_MATCH if a.get(key) != b.get(key)]  # guides: only where set
    if clashing:
        shown = "; ".join(d for d in differences(old, new) if d.split(":")[0] in clashing)
        raise RecipeError(f"cannot extend: {shown}; one directory holds one corpus, so give another --out")
    merged = old.model_dump(mode="json")
    newer = new.model_dump(mode="json")
    for key in _LISTS:
        merged[key] = _union(merged[key], newer[key])
    teachers = {t["label"]: t for t in merged["teachers"]}
    for teacher in newer["teachers"]:
        known = teachers.get(teacher["label"])
        if known is not None and _teacher_identity(known) != _teacher_identity(teacher):
            raise RecipeError(f"cannot extend: teacher label {teacher['label']!r} names another teacher here")
        teachers[teacher["label"]] = teacher  # the newer transport settings win
    merged["teachers"] = list(teachers.values())
    hidden = [t["label"] for t in merged["teachers"] if HIDDEN in (t.get("base_url") or "")]
    if hidden:  # recipe.yaml keeps URLs without their keys: a teacher only stored there cannot be reached
        raise RecipeError(
            f"cannot extend: the stored URL of teacher {', '.join(hidden)} is redacted (it held a key); give that "
            "teacher in this recipe too"
        )
    merged["limit"] = None if None in (old.limit, new.limit) else max(old.limit or 0, new.limit or 0)
    merged["native"] = old.native or new.native
    merged["max_cost_usd"] = new.max_cost_usd
    merged["judge"] = newer["judge"] or merged["judge"]
    return parse_recipe(merged, "extended recipe")
