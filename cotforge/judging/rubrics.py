"""A rubric: what a judge is asked about one record, the range of its score, and the pydantic model its verdict must
validate into. Built in: faithful, level, leak. Your own: a RubricSpec in a recipe, or a Rubric (or subclass, for
more context than the question and the rationale) from Python."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from cotforge.recipes.prompts import level_guide
from cotforge.schemas.answer_format import parse_object
from cotforge.schemas.guides import CustomGuides
from cotforge.schemas.judge import RubricSpec
from cotforge.schemas.record import CoTRecord

_SYSTEM = (
    "You are a strict grader of worked solutions written to teach a small student model. Grade the solution below "
    "on one criterion only:\n{instruction}\nScore from {low} (worst) to {high} (best). Reply with a JSON object "
    'and nothing else: {{"score": <whole number from {low} to {high}>, "reason": "<one sentence>"}}. Its JSON '
    "schema: {schema}"
)


@functools.cache
def verdict_model(min_score: int, max_score: int) -> type[BaseModel]:
    """The verdict of a rubric scored from min_score to max_score: a whole score in range and a one-sentence
    reason."""
    return create_model(
        "Verdict",
        __config__=ConfigDict(extra="forbid"),
        score=(int, Field(ge=min_score, le=max_score, description="The grade")),
        reason=(str, Field(min_length=1, description="One sentence: why this grade")),
    )


@dataclass(frozen=True)
class Rubric:
    """`version` is part of each stored verdict's key: change it whenever the instruction changes."""

    name: str
    version: str
    instruction: str
    min_score: int = 1
    max_score: int = 5

    @property
    def verdict(self) -> type[BaseModel]:
        return verdict_model(self.min_score, self.max_score)

    def json_schema(self) -> dict[str, Any]:
        return self.verdict.model_json_schema()

    def context(self, record: CoTRecord, guides: CustomGuides | None) -> str:
        """What the judge reads besides the question and the rationale; a subclass may add to it."""
        return ""

    def messages(self, record: CoTRecord, guides: CustomGuides | None = None) -> list[dict[str, str]]:
        schema = json.dumps(self.json_schema(), separators=(",", ":"))
        system = _SYSTEM.format(instruction=self.instruction, low=self.min_score, high=self.max_score, schema=schema)
        parts = [f"Question:\n{record.question}"]
        context = self.context(record, guides)
        if context:
            parts.append(context)
        parts.append(f"Solution to grade:\n{record.rationale}")
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]

    def parse(self, text: str | None) -> BaseModel | str:
        """The verdict, or why the text is not one (a sentence naming what is wrong)."""
        return parse_object(self.verdict, text)


class LevelRubric(Rubric):
    """Shows the judge the guide and the demonstration the prompts use for the record's level (the user's own guides
    where the build had them), not the level number alone."""

    def context(self, record: CoTRecord, guides: CustomGuides | None) -> str:
        if record.granularity is None or record.granularity == 0:
            return "Requested level of detail: none given; judge the solution against the other levels' norm."
        guide, demonstration = level_guide(record.answer_type, record.granularity, guides)
        return (
            f"Requested level of detail: {guide}\n\nAn example solution at exactly that level, for another "
            f"question:\n{demonstration}"
        )


# Names as cotforge.schemas.judge.BUILTIN_RUBRICS (a test keeps them equal).
BUILTIN: dict[str, Rubric] = {
    "faithful": Rubric(
        "faithful",
        "1",
        "Faithfulness: every step follows from the question and the steps before it, and the final answer follows "
        "from the steps. 5: every step is valid and the answer is what they give; 1: steps are wrong, skipped or "
        "unrelated, or the answer does not follow from them (a lucky guess).",
    ),
    "level": LevelRubric(
        "level",
        "1",
        "Granularity: the solution is written at the requested level of detail, as described and as the example "
        "shows (length, what each step states, whether it explains why). 5: exactly that level; 1: far terser or "
        "far more detailed than asked.",
    ),
    "leak": Rubric(
        "leak",
        "1",
        "Derivation: the solution derives its final answer rather than assuming it (stating the answer first and "
        "working backwards to it, or mentioning that the answer was given). 5: derived throughout; 1: the answer "
        "is assumed and the steps merely decorate it.",
    ),
}


def resolve_rubric(rubric: str | RubricSpec | Rubric) -> Rubric:
    """A built-in rubric by name, a recipe's own, or a Python one as given."""
    if isinstance(rubric, Rubric):
        return rubric
    if isinstance(rubric, str):
        if rubric not in BUILTIN:
            raise ValueError(f"unknown rubric {rubric!r}; built-in: {', '.join(BUILTIN)}")
        return BUILTIN[rubric]
    return Rubric(rubric.name, rubric.version, rubric.instruction, rubric.min_score, rubric.max_score)
