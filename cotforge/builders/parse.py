"""Turn a teacher's text into a clean rationale and its steps; the final answer is read by cotforge.answers, the
same code the student's evaluation uses, so what counts as "the answer" is defined once."""

from __future__ import annotations

import re

from cotforge.answers import ANSWER_TRIGGER, AnswerSource, ParsedAnswer, repair_control_chars
from cotforge.recipes.formats import FORMATS
from cotforge.schemas.recipe import CoTFormat

# Prompt scaffolding some teachers echo back (seen in the paper's GPT-4o data).
_TEMPLATE_TAGS = re.compile(r"</?\s*Solution Path\s*>|^\s*Solution Path\s*:\s*", re.IGNORECASE | re.MULTILINE)


def clean_rationale(text: str) -> str:
    """Strip echoed prompt tags and surrounding blank space, and repair LaTeX commands that careless JSON turned
    into control characters; the reasoning itself is kept as written."""
    return _TEMPLATE_TAGS.sub("", repair_control_chars(text)).strip()


def canonical_rationale(text: str, parsed: ParsedAnswer) -> str:
    """The rationale ending in exactly one line "The answer is X", whatever form the answer was stated in."""
    stated = parsed.source in (AnswerSource.canonical, AnswerSource.custom, AnswerSource.schema)  # its line goes
    body = body_without_answer(text) if stated else text
    answer_line = f"The answer is {parsed.answer}"
    return f"{body}\n{answer_line}" if body else answer_line


# ---- steps ---------------------------------------------------------------------------------------------------

# A sentence ends at . ! ? followed by space and a capital or an opening bracket; "290.2. Note" (numbered steps
# glued together, as in the paper's data) also splits before "2.".
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])|(?<=[a-z)%]\.)(?=\d{1,2}\.\s)|(?<=\d\.)(?=\d{1,2}\.\s+[A-Z])")
_NUMBERED = re.compile(r"(?:(?<=\s)|^|(?<=[.:]))(?:step\s*)?(\d{1,2})[.):]\s+(?=\S)", re.IGNORECASE)


def body_without_answer(rationale: str) -> str:
    """The rationale minus its final answer line."""
    triggers = list(ANSWER_TRIGGER.finditer(rationale))
    if triggers:
        rationale = rationale[: triggers[-1].start()]
        rationale = re.sub(r"(?:\b(?:so|thus|therefore|hence)\s*,?\s*)$", "", rationale.rstrip(), flags=re.I)
    return rationale.strip()


def _numbered_steps(text: str) -> list[str] | None:
    """Split at 1., 2., 3. ... when the numbers run in sequence from 1; None when they do not."""
    cuts, expected = [], 1
    for match in _NUMBERED.finditer(text):
        if int(match.group(1)) == expected:
            cuts.append(match.start())
            expected += 1
    if expected <= 2:
        return None
    pieces = [text[: cuts[0]]] + [text[a:b] for a, b in zip(cuts, [*cuts[1:], len(text)], strict=False)]
    return [p.strip() for p in pieces if p.strip()]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def split_steps(rationale: str, fmt: CoTFormat) -> list[str]:
    """The reasoning steps of a rationale, in order, without the final answer line."""
    body = body_without_answer(rationale)
    if not body:
        return []
    spec = FORMATS[fmt]
    if spec.step_split and spec.split_first:
        return [p.strip() for p in re.split(spec.step_split, body) if p.strip()]
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    if len(lines) > 1:
        return lines
    numbered = _numbered_steps(body)
    if numbered:
        return numbered
    if spec.step_split:
        pieces = [p.strip() for p in re.split(spec.step_split, body) if p.strip()]
        if len(pieces) > 1:
            return pieces
    return _sentences(body)
