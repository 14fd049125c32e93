"""The Anthropic Messages API, or any server that speaks it with `base_url` (the URL before /v1/messages)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cotforge.schemas.teachers.base import RemoteTeacherBase, list_price

# USD per million tokens (input, output), Anthropic list prices.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-opus-4": (15.00, 75.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4-5": (5.00, 25.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
}


class AnthropicTeacherSpec(RemoteTeacherBase):
    """Messages, one request per answer (the API has no `n`); its thinking blocks are the trace."""

    client: ClassVar[str] = "cotforge.builders.teachers.anthropic_messages:AnthropicTeacher"
    effort_refusal: ClassVar[str | None] = (
        "ask for extended thinking with extra_body: {thinking: {type: enabled, budget_tokens: N}}"
    )
    key_kind: ClassVar[str] = "an Anthropic API key"

    backend: Literal["anthropic"] = "anthropic"
    base_url: str | None = Field(default=None, description="A Messages API server, e.g. http://127.0.0.1:8000")
    api_key_env: str = "ANTHROPIC_API_KEY"

    def list_price(self) -> tuple[float, float] | None:
        return None if self.base_url is not None else list_price(self.model, PRICES_PER_MTOK)
