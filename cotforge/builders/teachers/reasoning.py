"""Reasoning teachers' answers on the wire: where each server puts the trace, and its share of the tokens.

A trace comes back in a field of its own, named after the server (`reasoning_content`: DeepSeek's API, vLLM and
SGLang with a reasoning parser; `reasoning`: OpenRouter, Together, llama.cpp's server; `thinking`: gpt-oss style),
or inline at the start of the content (cotforge.answers.reasoning splits it). Every backend turns its output into
the same (answer text, trace, trace left open) triple here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cotforge.answers.reasoning import THINK_CLOSE, split_reasoning

REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")


@dataclass(frozen=True)
class Separated:
    """`text`: what follows the trace (the answer); `reasoning`: the trace or None; `open`: the trace never ended
    (no closing tag), so the text was cut while the model was still reasoning."""

    text: str | None
    reasoning: str | None
    open: bool = False


def separate(content: str | None, reasoning: str | None = None) -> Separated:
    """The trace apart from the answer, by cotforge.answers.reasoning's one rule. A trace given in its own field is
    the trace; an inline one in the content is cut from the answer either way, so a trace given both ways is kept
    once, and never in the rationale."""
    field = reasoning.strip() if reasoning and reasoning.strip() else None
    if content is None:
        return Separated(None, field)
    split = split_reasoning(content)
    if split.reasoning is None and split.closed:
        return Separated(content, field)
    return Separated(split.answer, field or split.reasoning, open=not split.closed)


def separate_message(message: Mapping[str, Any]) -> Separated:
    """An OpenAI-style chat message: its content, and its trace under whichever name the server used."""
    content = message.get("content")
    reasoning = next(
        (value for name in REASONING_FIELDS if isinstance(value := message.get(name), str) and value.strip()), None
    )
    return separate(content if isinstance(content, str) else None, reasoning)


def separate_parsed(text: str, parsed: tuple[str | None, str | None]) -> Separated:
    """vLLM's reasoning parser's (reasoning, content) of `text`. Its think-tag parsers give the whole text as the
    trace when no closing tag came, so a trace with no content and no `</think>` in the text is an open one."""
    reasoning, content = parsed
    if not reasoning:
        return separate(content if content is not None else text)
    inline = separate(content or "", reasoning)  # a parser leaves a nested or second block in the content
    return Separated(inline.text, inline.reasoning, open=inline.open or (not content and THINK_CLOSE not in text))


# No answer comes near a trillion tokens, and the sums of a build of millions of answers stay inside Int64.
MAX_TOKEN_COUNT = 10**12


def token_count(value: object) -> int | None:
    """A server's token count, or None where it is no whole number from zero to MAX_TOKEN_COUNT (a bool is no
    count)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    return None


def completion_tokens(usage: Mapping[str, Any]) -> tuple[object, int | None]:
    """(output tokens, of which reasoning) from a usage object. OpenAI-style usage counts the trace inside
    `completion_tokens` (`completion_tokens_details.reasoning_tokens` says how much of it); a provider that reports
    more reasoning tokens than completion tokens counts them apart, so they are added: the trace is billed as output
    either way. A completion count that is no count is handed back as it is, for the caller to record as unknown."""
    completion = usage.get("completion_tokens", 0)
    details = usage.get("completion_tokens_details")
    reasoning = token_count(details.get("reasoning_tokens")) if isinstance(details, Mapping) else None
    if token_count(completion) is None or reasoning is None:
        return completion, reasoning
    return (completion if reasoning <= completion else completion + reasoning), reasoning
