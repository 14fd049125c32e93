"""The Anthropic Messages API (POST {base_url}/v1/messages), or any server that speaks it.

The OpenAI client's transport (rate limits, adaptive concurrency, retries) with this API's wire format: the key in
`x-api-key`, system prompts apart from the messages, one answer per request (no `n`), and a reply of content
blocks whose `thinking` blocks are the trace. Every field read from a reply is checked here, as for chat
completions: a reply without a content list is asked again, a block out of shape makes the answer malformed, and a
token count out of range is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cotforge.builders.teachers.base import Answer, share_usage, traced_answer
from cotforge.builders.teachers.openai_chat import RETRYABLE_STATUS, OpenAITeacher
from cotforge.builders.teachers.reasoning import Separated, separate
from cotforge.schemas.recipe import SamplingParams

API_VERSION = "2023-06-01"
OVERLOADED = 529  # Anthropic's "overloaded": busy, so asked again later
# The API's stop reasons in the chat completions' words the records read (max_tokens: the answer was cut).
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter"}


class AnthropicTeacher(OpenAITeacher):
    """Made from an AnthropicTeacherSpec (cotforge.schemas.teachers.anthropic)."""

    default_base_url = "https://api.anthropic.com"
    base_url_variable = "ANTHROPIC_BASE_URL"
    path = "/v1/messages"
    retryable_status = RETRYABLE_STATUS | {OVERLOADED}
    most_answers_per_request = 1

    def request_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key, "anthropic-version": API_VERSION, "Content-Type": "application/json"}

    def request_body(self, messages: list[dict[str, str]], n: int) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body: dict[str, Any] = {
            "model": self.spec.model,
            "max_tokens": self.sampling.max_tokens,
            "messages": [m for m in messages if m["role"] != "system"],
        }
        if system:
            body["system"] = system
        if self.spec.model_capabilities.sampling:
            body["temperature"] = self.sampling.temperature
            if self.sampling.top_p != SamplingParams.model_fields["top_p"].default:
                body["top_p"] = self.sampling.top_p  # newer models refuse temperature and top_p together
        return body | self.spec.extra_body

    def answers_from(self, reply: object, latency_s: float) -> list[Answer]:
        return [answer_from_message(reply, latency_s)]


def answer_from_message(reply: object, latency_s: float | None) -> Answer:
    """The answer in a Messages API reply: its text blocks joined, its thinking blocks as the trace."""
    if not isinstance(reply, Mapping) or not isinstance(reply.get("content"), list):
        raise ValueError("not a Messages API reply: no 'content' list")
    usage = reply.get("usage")
    if usage is None:
        usage = {}  # no usage reported: nothing counted
    share = (
        share_usage(usage.get("input_tokens", 0), usage.get("output_tokens", 0), 1)
        if isinstance(usage, Mapping)
        else None
    )
    finish = reply.get("stop_reason")
    finish = FINISH_REASONS.get(finish, finish) if isinstance(finish, str) else None
    texts: dict[str, list[str]] = {"text": [], "thinking": []}
    for position, block in enumerate(reply["content"]):
        why = _block_out_of_shape(position, block)
        if why is not None:
            return traced_answer(Separated(None, None), finish, share, latency_s, malformed=why)
        kind = block["type"]
        if kind in texts:
            texts[kind].append(block[kind])
    text = "".join(texts["text"]) if texts["text"] else None
    return traced_answer(separate(text, "\n\n".join(texts["thinking"]) or None), finish, share, latency_s)


def _block_out_of_shape(position: int, block: object) -> str | None:
    """Why a content block cannot be read: not an object, no type, or a text or thinking block whose text is not
    text. Blocks of other types (redacted thinking, tool use) are not read."""
    if not isinstance(block, Mapping):
        return f"content[{position}]: {type(block).__name__}, not an object"
    kind = block.get("type")
    if not isinstance(kind, str):
        return f"content[{position}].type: missing or not text"
    if kind in ("text", "thinking") and not isinstance(block.get(kind), str):
        return f"content[{position}].{kind}: missing or not text"
    return None
