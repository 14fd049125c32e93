"""Your own prompt and answer reader, for a format or a data set the built-ins do not cover: the shape of Curator's
`prompt(row)` / `parse(row, response)`, with cotforge's store, resume, validation and card kept."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from cotforge.schemas.answer_format import AnswerFormat, StructuredOutput
from cotforge.schemas.problem import Problem
from cotforge.schemas.record import ChatMessage

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class CustomPrompt:
    """`prompt(problem)` returns the user turn (a string) or the whole chat (a list of {"role", "content"});
    `parse(problem, response)` returns the final answer as the problem's answer type states it, or None when the
    response has none (kept aside as unparseable). Without `parse`, the built-in answer reader reads it.

    `answer_format`, a pydantic model: the teacher is asked for a JSON object of it (its schema in the prompt, and
    as response_format where the server takes one, per `structured_output`); a reply that does not validate is
    kept aside with the validation error, and `parse` gets the validated object (without `parse`, its `answer`
    field is the final answer). A `rationale` or `steps` field, where it has one, is the CoT.

    `name` and `version` enter every store key and the recipe: change the version when the prompt changes, so a
    resume asks again rather than keeping answers to the old prompt (a changed answer_format asks again itself)."""

    name: str
    prompt: Callable[[Problem], str | list[dict[str, str]]]
    parse: Callable[[Problem, Any], str | None] | None = None
    version: str = "1"
    answer_format: type[BaseModel] | None = None
    structured_output: StructuredOutput = "json_schema"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"custom prompt name {self.name!r}: use lower-case letters, digits, '.', '_' or '-'")
        model = self.answer_format
        if model is not None and self.parse is None and "answer" not in model.model_fields:
            raise ValueError(f"answer_format {model.__name__}: give it an 'answer' field, or give a parse function")

    @functools.cached_property
    def asked_format(self) -> AnswerFormat | None:
        """Made once: every job's prompt_version reads its digest."""
        model = self.answer_format
        return None if model is None else AnswerFormat(model, self.structured_output)

    @property
    def prompt_version(self) -> str:
        """What the records' prompt_version and the recipe's custom_prompt hold."""
        asked = self.asked_format
        return f"custom-{self.name}-{self.version}" + (f"-json-{asked.digest}" if asked is not None else "")

    def messages(self, problem: Problem) -> list[ChatMessage]:
        made = self.prompt(problem)
        if isinstance(made, str):
            return [ChatMessage(role="user", content=made)]
        return [ChatMessage.model_validate(message) for message in made]
