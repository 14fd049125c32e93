"""A reasoning model's trace apart from its answer: `<think>…</think>` at the start of a text.

Teachers and thinking students write the same shapes, so the builder and the student's evaluation split them here,
once: an inline block at the start (`<think>trace</think>answer`), the template-prefilled case where the opening
tag was part of the prompt and only `</think>` comes back (`trace</think>answer`), and a trace the token budget cut
(`<think>trace…` with no closing tag). The answer is read from the text after the trace, never from inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_OPEN_AT_START = re.compile(r"^\s*<think>", re.IGNORECASE)
_CLOSE = re.compile(r"</think>", re.IGNORECASE)


@dataclass(frozen=True)
class TraceSplit:
    """`reasoning`: the trace (None when the text has none); `answer`: the text after it; `closed`: False when a
    trace was opened and never closed, so `answer` is empty and the text was cut mid-thought."""

    reasoning: str | None
    answer: str
    closed: bool = True


def split_reasoning(text: str) -> TraceSplit:
    """The trace and the answer of `text`. A `</think>` with no opening tag closes a trace that began in the prompt
    (a chat template that prefills `<think>`); text with neither tag has no trace."""
    opened = _OPEN_AT_START.match(text)
    body = text[opened.end() :] if opened else text
    close = _CLOSE.search(body)
    if close is None:
        if opened:
            return TraceSplit(reasoning=body.strip(), answer="", closed=False)
        return TraceSplit(reasoning=None, answer=text)
    reasoning = body[: close.start()].strip()
    return TraceSplit(reasoning=reasoning or None, answer=body[close.end() :].strip())


def with_think_tags(reasoning: str, answer: str) -> str:
    """A trace and its answer as one text, in the inline shape that split_reasoning reads back."""
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{answer}"
