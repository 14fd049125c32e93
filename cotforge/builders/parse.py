"""Turn a teacher's text into a clean rationale, its steps and its final answer.

The same code extracts answers from a trained student's generations (cotforge.train.evaluate), so what counts as
"the answer" is defined once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from cotforge.schemas.problem import CHOICE_LABELS, AnswerType
from cotforge.schemas.recipe import CoTFormat

# "The answer is", "the final answer is:", "Therefore, the answer is" - the last one in the text wins.
_TRIGGER = re.compile(r"\b(?:the\s+)?(?:final\s+)?answer\s+is\s*:?", re.IGNORECASE)
_GSM8K_MARKER = re.compile(r"####\s*(.+)")
_ANSWER_COLON = re.compile(r"(?:^|\n)\s*(?:final\s+)?answer\s*:\s*(.+)", re.IGNORECASE)
# Prompt scaffolding some teachers echo back (seen in the paper's GPT-4o data).
_TEMPLATE_TAGS = re.compile(r"</?\s*Solution Path\s*>|^\s*Solution Path\s*:\s*", re.IGNORECASE | re.MULTILINE)

_NUMBER = re.compile(
    r"""(?P<sign>[-−])?\s*[$€£]?\s*
        (?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?P<frac>\.\d+)?
        (?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?""",
    re.VERBOSE,
)
_LATEX_FRAC = re.compile(r"\\d?frac\s*\{\s*([-\d.,]+)\s*\}\s*\{\s*([-\d.,]+)\s*\}")


class AnswerSource(str, Enum):
    canonical = "canonical"  # "The answer is X"
    boxed = "boxed"  # \boxed{X}
    marker = "marker"  # "#### X" or "Answer: X"
    fallback = "fallback"  # the last number in the text


@dataclass(frozen=True)
class ParsedAnswer:
    answer: str
    source: AnswerSource


def clean_rationale(text: str) -> str:
    """Strip echoed prompt tags and surrounding blank space; the reasoning itself is kept as written."""
    return _TEMPLATE_TAGS.sub("", text).strip()


def parse_number(text: str) -> float | None:
    """The first number in `text`: commas, currency, percent, signs, decimals, fractions and \\frac{a}{b} allowed."""
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    for match in _NUMBER.finditer(text):
        whole, frac = match.group("int"), match.group("frac")
        if whole is None and frac is None:
            continue
        value = float((whole or "0").replace(",", "") + (frac or ""))
        den = match.group("den")
        if den is not None:
            if float(den) == 0:
                return None
            value /= float(den)
        return -value if match.group("sign") else value
    return None


def format_number(value: float) -> str:
    """Canonical text for a number: 145.0 -> '145', 0.5 -> '0.5'."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}), with nested braces."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    open_at = text.find("{", start)
    if open_at < 0:
        return None
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i].strip()
    return None


def _answer_segment(text: str) -> tuple[str, AnswerSource] | None:
    """The text that states the final answer, and where it was found."""
    triggers = list(_TRIGGER.finditer(text))
    if triggers:
        tail = text[triggers[-1].end() :].strip()
        segment = tail.split("\n", 1)[0].strip()
        if segment:
            return segment, AnswerSource.canonical
    boxed = last_boxed(text)
    if boxed:
        return boxed, AnswerSource.boxed
    for pattern in (_GSM8K_MARKER, _ANSWER_COLON):
        found = pattern.findall(text)
        if found:
            return found[-1].strip(), AnswerSource.marker
    return None


def _normalise_choice(segment: str, choices: list[str] | None) -> str | None:
    labels = CHOICE_LABELS[: len(choices)] if choices else CHOICE_LABELS[:5]
    label_class = f"[{labels}{labels.lower()}]"
    for pattern in (
        rf"^\W*\(({label_class})\)",  # (B) or (b)
        rf"^\W*(?:option|choice)\s+({label_class})\b",  # option B
        rf"^\W*([{labels}])(?:[).:,\s]|$)",  # B) B: B. B
        rf"\(([{labels}])\)",  # ... (B) later in the segment
    ):
        match = re.search(pattern, segment, re.IGNORECASE if "option" in pattern else 0)
        if match:
            return match.group(1).upper()
    if choices:  # the teacher named the choice's text instead of its letter
        said = _plain(segment)
        named = [label for label, text in zip(labels, choices, strict=False) if _plain(text) and _plain(text) in said]
        if len(named) == 1:
            return named[0]
    return None


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _normalise_boolean(segment: str) -> str | None:
    match = re.search(r"\b(yes|no|true|false)\b", segment, re.IGNORECASE)
    if match is None:
        return None
    return "True" if match.group(1).lower() in ("yes", "true") else "False"


def normalise_expression(segment: str) -> str:
    """A MATH answer as compared by string: no $, \\left/\\right, spaces, degree signs, \\text units, trailing dot."""
    boxed = last_boxed(segment)
    text = boxed if boxed is not None else segment
    text = re.sub(r"\\text\{\s*[a-zA-Z ]*\}", "", text)
    for old, new in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("^\\circ", ""), ("^{\\circ}", ""), ("$", "")):
        text = text.replace(old, new)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return re.sub(r"\s+", "", text).rstrip(".")


def normalise_answer(segment: str, answer_type: AnswerType, choices: list[str] | None = None) -> str | None:
    """The canonical form of an answer of the given type, or None when `segment` holds none."""
    if answer_type is AnswerType.number:
        # "The answer is 13 + 8 = 21": the result is what follows the last '='.
        value = parse_number(segment.rsplit("=", 1)[-1]) if "=" in segment else None
        value = parse_number(segment) if value is None else value
        return None if value is None else format_number(value)
    if answer_type is AnswerType.choice:
        return _normalise_choice(segment, choices)
    if answer_type is AnswerType.boolean:
        return _normalise_boolean(segment)
    expression = normalise_expression(segment)
    return expression or None


def extract_answer(text: str, answer_type: AnswerType, choices: list[str] | None = None) -> ParsedAnswer | None:
    """The final answer stated in `text`, normalised for its type, or None when there is none."""
    found = _answer_segment(text)
    if found is not None:
        segment, source = found
        answer = normalise_answer(segment, answer_type, choices)
        if answer is not None:
            return ParsedAnswer(answer, source)
    if answer_type is AnswerType.number:
        # As MAmmoTH's evaluation does: with no answer line, the last number in the text.
        numbers = [m for m in _NUMBER.finditer(text) if m.group("int") or m.group("frac")]
        if numbers:
            value = parse_number(numbers[-1].group(0))
            if value is not None:
                return ParsedAnswer(format_number(value), AnswerSource.fallback)
    return None


def canonical_rationale(text: str, parsed: ParsedAnswer) -> str:
    """The rationale ending in exactly one line "The answer is X", whatever form the answer was stated in."""
    body = body_without_answer(text) if parsed.source is AnswerSource.canonical else text
    answer_line = f"The answer is {parsed.answer}"
    return f"{body}\n{answer_line}" if body else answer_line


# ---- steps ---------------------------------------------------------------------------------------------------

_FINAL_LINE = re.compile(r"[.\s]*\b(?:the\s+)?(?:final\s+)?answer\s+is\b.*$", re.IGNORECASE | re.DOTALL)
# A sentence ends at . ! ? followed by space and a capital or an opening bracket; "290.2. Note" (numbered steps
# glued together, as in the paper's data) also splits before "2.".
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])|(?<=[a-z)%]\.)(?=\d{1,2}\.\s)|(?<=\d\.)(?=\d{1,2}\.\s+[A-Z])")
_NUMBERED = re.compile(r"(?:(?<=\s)|^|(?<=[.:]))(?:step\s*)?(\d{1,2})[.):]\s+(?=\S)", re.IGNORECASE)


def body_without_answer(rationale: str) -> str:
    """The rationale minus its final answer line."""
    triggers = list(_TRIGGER.finditer(rationale))
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
    if fmt is CoTFormat.subquestions:
        # Each step is a sub-question with its answer: cut before every sentence that follows a '?'.
        parts = re.split(r"(?<=[.!])\s+(?=[^.!?]*\?)", body)
        return [p.strip() for p in parts if p.strip()]
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    if len(lines) > 1:
        return lines
    numbered = _numbered_steps(body)
    if numbered:
        return numbered
    if fmt is CoTFormat.symbolic:
        pieces = re.split(r"\s*(?=∴|∃|∀)|;\s*", body)
        pieces = [p.strip() for p in pieces if p.strip()]
        if len(pieces) > 1:
            return pieces
    return _sentences(body)
