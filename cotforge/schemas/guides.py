"""Your own level guides and demonstration (for a domain the built-in prompts do not cover: code, science), given in
the recipe or in a YAML file next to it, and checked as the built-in ones are (tests/test_prompts.py)."""

from __future__ import annotations

import itertools
import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cotforge.answers import ANSWER_TRIGGER, last_boxed

# Markdown that hides an answer line from a plain search and not from a model: emphasis, code, quotes, headings.
_MARKDOWN = re.compile(r"[*_`~]+|^\s*(?:[>#]+|[-+]\s)", re.MULTILINE)


def states_an_answer(text: str) -> bool:
    """Whether `text` holds what the answer reader takes for an answer ("The answer is ...", \\boxed{}), once
    markdown, Unicode spaces (no-break, thin, zero-width) and line breaks are normalised away."""
    plain = unicodedata.normalize("NFKC", text)
    plain = "".join(char for char in plain if unicodedata.category(char) != "Cf")  # zero-width spaces and joiners
    plain = " ".join(_MARKDOWN.sub("", plain).split())
    return ANSWER_TRIGGER.search(plain) is not None or last_boxed(plain) is not None


def _check_texts(texts: dict[int, str], lowest: int, what: str, levels_are: str) -> None:
    """Each text at a level from `lowest` to 6, and not blank."""
    for level, text in texts.items():
        if not lowest <= level <= 6:
            raise ValueError(f"level {level}: {levels_are}")
        if not text.strip():
            raise ValueError(f"level {level}: the {what} is blank")


class CustomDemonstration(BaseModel):
    """The 1-shot pair shown before the question: a question, its answer, and the rationale body at each level
    (without the final answer line, which is added as `The answer is <answer>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    by_level: dict[int, str] = Field(description="level 1..6 -> the rationale at that level, without the answer line")

    @field_validator("question", "answer")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("answer")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if len(value.strip().splitlines()) > 1:
            raise ValueError("one line: it ends the demonstration as 'The answer is <answer>'")
        return value

    @field_validator("by_level")
    @classmethod
    def _levels(cls, value: dict[int, str]) -> dict[int, str]:
        _check_texts(value, 1, "rationale", "demonstrations are for levels 1..6 (level 0 has no rationale)")
        for level, body in value.items():
            if states_an_answer(body):
                raise ValueError(f"level {level}: leave out 'The answer is ...'; it is added after the rationale")
        # As the built-in demonstrations: each level says more than the one below it.
        words = [(level, len(value[level].split())) for level in sorted(value)]
        for (low, fewer), (high, more) in itertools.pairwise(words):
            if more <= fewer:
                raise ValueError(
                    f"level {high} has {more} words and level {low} {fewer}: a higher level must be longer"
                )
        return value


class CustomGuides(BaseModel):
    """Level guides and a demonstration that replace the built-in ones in every directly asked prompt. Their text
    is part of each prompt's version, so records made with other guides never mix with these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="custom", min_length=1, description="A short name, shown in the plan and the card")
    levels: dict[int, str] = Field(min_length=1, description="level 0..6 -> its guide, one or two sentences")
    demonstration: CustomDemonstration
    answer_form: str | None = Field(
        default=None, description="What X is in 'The answer is X', e.g. 'the function name alone'; default: built-in"
    )

    @field_validator("levels")
    @classmethod
    def _guides(cls, value: dict[int, str]) -> dict[int, str]:
        _check_texts(value, 0, "guide", "levels run from 0 (answer only) to 6")
        return value

    @model_validator(mode="after")
    def _demonstrated(self) -> CustomGuides:
        missing = [level for level in self.levels if level > 0 and level not in self.demonstration.by_level]
        if missing:
            raise ValueError(
                f"demonstration.by_level has no rationale for level {', '.join(map(str, sorted(missing)))}; every "
                "guided level above 0 needs one"
            )
        return self

    def check_asked(self, granularities: list[int], native: bool, rewrite: bool) -> None:
        """A ValueError naming the field where a recipe asks for what these guides do not cover."""
        unguided = [level for level in granularities if level not in self.levels]
        if unguided:
            raise ValueError(
                f"guides.levels has no guide for level {', '.join(map(str, unguided))}, which granularities asks for"
            )
        if native or rewrite:
            raise ValueError(
                "guides: custom guides steer the directly asked levels; rewrite mode and the native arm use the "
                "built-in prompts, so leave them out of a guided recipe"
            )

    def __hash__(self) -> int:  # prompt versions are cached by their arguments, these guides among them
        return hash(self.model_dump_json())
