"""A reasoning model's trace apart from its answer: `<think>…</think>` blocks around a text.

Teachers and thinking students write the same shapes, so the builder and the student's evaluation split them here,
once, by one rule: the answer is read after the last closing `</think>` of the trace (`<think>trace</think>answer`;
a trace whose opening tag was part of the prompt, `trace</think>answer`; blocks nested in the trace, or thinking
between blocks), and text after an answer that opens a new trace (`answer<think>…`) is no answer: it is trace. A
trace the token budget cut (`<think>trace…` with no closing tag, no answer before it) leaves no answer at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cotforge.answers.extract import ANSWER_TRIGGER
from cotforge.answers.latex import last_boxed

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_TAG = re.compile(r"<(/?)think>", re.IGNORECASE)


@dataclass(frozen=True)
class TraceSplit:
    """`reasoning`: the trace (None when the text has none); `answer`: the text after it; `closed`: False when a
    trace was opened and never closed, so `answer` is empty and the text was cut mid-thought."""

    reasoning: str | None
    answer: str
    closed: bool = True


def _states_an_answer(text: str) -> bool:
    return ANSWER_TRIGGER.search(text) is not None or last_boxed(text) is not None


def _trace(*parts: str) -> str | None:
    return "\n\n".join(part.strip() for part in parts if part.strip()) or None


def split_reasoning(text: str) -> TraceSplit:
    """The trace and the answer of `text`, by the rule above. A `</think>` with no opening tag before it closes a
    trace that began in the prompt (a chat template that prefills `<think>`); a `<think>` in prose that states no
    answer before it, with no closing tag after it, is no trace."""
    tags = list(_TAG.finditer(text))
    if not tags:
        return TraceSplit(reasoning=None, answer=text)
    first = tags[0]
    opens_first = not first.group(1)
    starts_with_trace = opens_first and not text[: first.start()].strip()
    if opens_first and not starts_with_trace and _states_an_answer(text[: first.start()]):
        # The answer, then a trace after it: the trace is kept as one, never read as the answer.
        return TraceSplit(_trace(_TAG.sub("", text[first.start() :])), text[: first.start()].strip())
    if opens_first and not any(tag.group(1) for tag in tags):
        if starts_with_trace:
            return TraceSplit(reasoning=text[first.end() :].strip(), answer="", closed=False)
        return TraceSplit(reasoning=None, answer=text)
    trace_from = first.end() if starts_with_trace else 0
    for i, tag in enumerate(tags):
        if not tag.group(1):
            continue
        after = tags[i + 1] if i + 1 < len(tags) else None
        if after is None:  # the last closing tag: the rest is the answer
            return TraceSplit(_trace(text[trace_from : tag.start()]), text[tag.end() :].strip())
        if after.group(1):
            continue  # another closing tag follows: still inside the trace (a nested block)
        between = text[tag.end() : after.start()]
        if _states_an_answer(between):  # the answer, then a new trace after it
            return TraceSplit(
                _trace(text[trace_from : tag.start()], _TAG.sub("", text[after.start() :])), between.strip()
            )
    # Every block closed but the last, which the budget cut before any answer.
    return TraceSplit(reasoning=_trace(_TAG.sub("", text[trace_from:])), answer="", closed=False)


def with_think_tags(reasoning: str, answer: str) -> str:
    """A trace and its answer as one text, in the inline shape that split_reasoning reads back."""
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{answer}"
