"""The OpenAI chat completions API, or any OpenAI-compatible server with `base_url` (vllm serve, llama.cpp)."""

from __future__ import annotations

from typing import ClassVar, Literal

from cotforge.schemas.teachers.base import RemoteTeacherBase, list_price

# USD per million tokens (input, output), OpenAI list prices for standard processing.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


class OpenAITeacherSpec(RemoteTeacherBase):
    """Chat completions, one request per prompt, as many in flight as the server takes."""

    client: ClassVar[str] = "cotforge.builders.teachers.openai_chat:OpenAITeacher"
    takes_response_format: ClassVar[bool] = True

    backend: Literal["openai"] = "openai"

    def list_price(self) -> tuple[float, float] | None:
        return None if self.base_url is not None else list_price(self.model, PRICES_PER_MTOK)
