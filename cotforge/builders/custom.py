"""Your own prompt and answer reader, for a format or a data set the built-ins do not cover: the shape of Curator's
`prompt(row)` / `parse(row, response)`, with cotforge's store, resume, validation and card kept."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cotforge.schemas.problem import Problem
from cotforge.schemas.record import ChatMessage

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class CustomPrompt:
    """`prompt(problem)` returns the user turn (a string) or the whole chat (a list of {"role", "content"});
    `parse(problem, response)` returns the final answer as the problem's answer type states it, or None when the
    response has none (kept aside as unparseable). Without `parse`, the built-in answer reader reads it.

    `name` and `version` enter every store key and the recipe: change the version when the prompt changes, so a
    resume asks again rather than keeping answers to the old prompt."""

    name: str
    prompt: Callable[[Problem], str | list[dict[str, str]]]
    parse: Callable[[Problem, str], str | None] | None = None
    version: str = "1"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"custom prompt name {self.name!r}: use lower-case letters, digits, '.', '_' or '-'")

    @property
    def prompt_version(self) -> str:
        """What the records' prompt_version and the recipe's custom_prompt hold."""
        return f"custom-{self.name}-{self.version}"

    def messages(self, problem: Problem) -> list[ChatMessage]:
        made = self.prompt(problem)
        if isinstance(made, str):
            return [ChatMessage(role="user", content=made)]
        return [ChatMessage.model_validate(message) for message in made]
