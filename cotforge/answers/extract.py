"""Find the final answer a text states, and put it in the canonical form of its type.

The order of evidence: the last answer line ("The answer is X") that says something, then \\boxed{}, then
"#### X" / "Answer: X" markers, then forms particular to a type (a choice letter named on the last line, a
closing sentence such as "... the only option that fits is B."), then a text that is nothing but an answer,
and last, for numbers only and only when the text has no answer line at all, its last number.
"""

from __future__ import annotations

import re

from cotforge.answers.latex import last_boxed, normalise_expression, repair_control_chars
from cotforge.answers.numbers import format_number, last_number, parse_number
from cotforge.answers.types import CHOICE_LABELS, AnswerSource, AnswerType, ParsedAnswer

# "The answer is", "the final answer is:", "The correct answer would be", "the answer isn't", "answer is not".
ANSWER_TRIGGER = re.compile(
    r"\b(?:the\s+)?(?:(?:final|correct|right|best)\s+)?answer\s+(?:is|was|would\s+be|should\s+be|will\s+be)"
    r"(?P<neg>n['’]?t\b|\s+not\b)?\s*:?",
    re.IGNORECASE,
)
_GSM8K_MARKER = re.compile(r"####\s*(.+)")
_ANSWER_COLON = re.compile(r"(?:^|\n)\s*\**(?:final\s+)?answer\**\s*:\s*(.+)", re.IGNORECASE)
# Prompt templates echoed instead of an answer: "The answer is <answer>", "[your answer]".
_PLACEHOLDER = re.compile(
    r"^[\s:\"'“”]*(?:<[^<>]{0,40}>|[\[{]\s*(?:final\s+|your\s+)?(?:answer|letter|number|option|choice|value|result|"
    r"label)\s*[\]}])[\s.]*$",
    re.IGNORECASE,
)
_NEGATED_START = re.compile(r"^(?:n['’]?t\b|(?:\w+\s+){0,2}?not\b)", re.IGNORECASE)
# After a negation, what the text asserts instead: "not 11, it's 50", "not A but C".
_ASSERTED = re.compile(
    r"(?:\bit['’]?s\b|\bit\s+is\b|\bbut\b|\brather\b|\binstead\b|\bactually\b|\bso\b|\bit\s+should\s+be\b)"
    r"\s*(?:is\b)?\s*:?\s*(?P<rest>\S.*)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[^\s.])\.\s+(?=[A-Z(])|[!?;](?=\s|$)")
_LAST_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_INLINE_MATH = re.compile(r"\$\$?([^$]+)\$\$?|\\\((.+?)\\\)")


def _line_after(text: str, position: int) -> str:
    """The rest of the line from `position`, or the next non-empty line when the rest is empty."""
    for line in text[position:].split("\n"):
        if line.strip():
            return line.strip()
    return ""


def _first_sentence(line: str) -> str:
    return _SENTENCE_END.split(line, maxsplit=1)[0].strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ---- normalisation by type -------------------------------------------------------------------------------------

# Words and marks before a choice letter: "is is C", "option C", "'A'", "ANSWER : A", "OptionE".
_CHOICE_FILLER = re.compile(
    r"^(?:[\s:\-–—\"'“”‘’*`>.=]+|(?i:is|be|the|correct|right|final|answer|option|choice|letter)(?![a-z]))+"
)


def _labels(choices: list[str] | None) -> str:
    return CHOICE_LABELS[: len(choices)] if choices else CHOICE_LABELS[:5]


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def normalise_choice(segment: str, choices: list[str] | None) -> str | None:
    """The choice letter a segment names ('B', '(b)', 'B>', 'is is C', 'OptionE', 'populated areas'), or None."""
    labels = _labels(choices)
    stripped = _CHOICE_FILLER.sub("", segment)
    for pattern in (
        rf"^\(?([{labels}])(?![A-Za-z])",  # B  B)  B.  B>  (B)  B(16)
        rf"^\(?([{labels.lower()}])(?:[).:]|$)",  # (b)  b.
        rf"\(([{labels}])\)",  # ... (B) later on
        rf"(?i:option|choice)\s*\(?([{labels}])(?![A-Za-z])",  # ... option C
        rf"\b(?i:i\.?\s?e\.?|that\s+is|namely),?\s*\(?([{labels}])(?![A-Za-z])",  # 30. i.e C
    ):
        match = re.search(pattern, stripped)
        if match:
            return match.group(1).upper()
    if choices:  # the choice's text instead of its letter
        said = _plain(segment)
        named = [
            label
            for label, text in zip(labels, choices, strict=False)
            if _plain(text) and f" {_plain(text)} " in f" {said} "
        ]
        if len(named) == 1:
            return named[0]
    return None


def _normalise_boolean(segment: str) -> str | None:
    match = re.search(r"\b(yes|no|true|false)\b", segment, re.IGNORECASE)
    if match is None:
        return None
    return "True" if match.group(1).lower() in ("yes", "true") else "False"


def normalise_answer(segment: str, answer_type: AnswerType, choices: list[str] | None = None) -> str | None:
    """The canonical form of an answer of the given type, or None when `segment` holds none."""
    if answer_type is AnswerType.number:
        # "The answer is 13 + 8 = 21": the result is what follows the last '='.
        value = parse_number(segment.rsplit("=", 1)[-1]) if "=" in segment else None
        value = parse_number(segment) if value is None else value
        return None if value is None else format_number(value)
    if answer_type is AnswerType.choice:
        return normalise_choice(segment, choices)
    if answer_type is AnswerType.boolean:
        return _normalise_boolean(segment)
    if _PLACEHOLDER.match(segment):
        return None
    return normalise_expression(segment) or None


# ---- the forms an answer takes ---------------------------------------------------------------------------------


def _after_negation(line: str, answer_type: AnswerType, choices: list[str] | None) -> str | None:
    """What a negated answer line asserts instead ("not 11, it's 50"), never the value it negates."""
    asserted = _ASSERTED.search(line)
    if asserted:
        return normalise_answer(_first_sentence(asserted.group("rest")), answer_type, choices)
    if answer_type is AnswerType.boolean:  # "The answer is not False." asserts True
        said = _normalise_boolean(_first_sentence(line))
        return None if said is None else ("False" if said == "True" else "True")
    return None


def _letter_form(text: str, choices: list[str] | None) -> str | None:
    """A choice named on the last line without an answer sentence: 'Answer E', 'so option C', '... (C)'."""
    labels = _labels(choices)
    line = _last_line(text)
    found = [
        match
        for pattern in (
            rf"(?i:answer)\s*(?:[:\-–]\s*)?[\"'(]?([{labels}])[\"')]?(?![A-Za-z])",
            rf"(?i:option|choice)\s*[\"'(]?([{labels}])[\"')]?(?![A-Za-z])",
            rf"\(([{labels}])\)",
        )
        for match in re.finditer(pattern, line)
    ]
    return max(found, key=lambda m: m.start()).group(1) if found else None


def _closing_sentence(text: str, answer_type: AnswerType, choices: list[str] | None) -> str | None:
    """The answer a text's last sentence gives: '... the only option that fits is B.', '... is False.'"""
    sentence = _LAST_SENTENCE.split(_last_line(text))[-1]  # choice and boolean sentences hold no math
    if answer_type is AnswerType.choice:
        labels = _labels(choices)
        match = re.search(rf"\b(?:is|be|was|are)\s*:?\s*[\"'“(]?([{labels}])[\"'”)]?\W*$", sentence)
        if match:
            return match.group(1)
        after_is = re.split(r"\bis\b", sentence)[-1]
        if choices and "is" in sentence.split():
            named = [label for label, t in zip(labels, choices, strict=False) if _plain(t) == _plain(after_is)]
            return named[0] if len(named) == 1 else None
        return None
    if answer_type is AnswerType.boolean:
        match = re.search(
            r"\b(?:is|be|was|are|:)\s+(not\s+)?[\"'“]?(true|false|yes|no)[\"'”]?\W*$", sentence, re.IGNORECASE
        )
        if match is None:
            return None
        said = "True" if match.group(2).lower() in ("true", "yes") else "False"
        return ("False" if said == "True" else "True") if match.group(1) else said
    if answer_type is AnswerType.expression:
        # The last inline math of the closing sentence, the result after its last '=': "... use $12 \div 2 = 6$
        # quarts", "There were $52$ prime dates in 2007." (MATH's own solutions mostly end so, without \boxed).
        line = _last_line(text)
        maths = list(_INLINE_MATH.finditer(line))
        masked = _INLINE_MATH.sub(lambda m: "x" * len(m.group(0)), line)  # no sentence ends inside math
        ends = [m.end() for m in _LAST_SENTENCE.finditer(masked)]
        closing = [m for m in maths if m.start() >= (ends[-1] if ends else 0)]
        if not closing:
            return None
        last = next(g for g in closing[-1].groups() if g).rsplit("=", 1)[-1]
        return normalise_expression(last) or None
    return None


_BARE_NUMBER = re.compile(r"^\W*[-−]?[$€£]?\s*[\d.,/]*\d[\d.,/]*\s*%?\W*$")


def _bare(text: str, answer_type: AnswerType, choices: list[str] | None) -> str | None:
    """A text that is nothing but an answer: '145', 'B', 'Option C', 'True', '\\frac{3}{4}'."""
    text = text.strip()
    if not text or len(text.split()) > 3:
        return None
    if answer_type is AnswerType.number:
        return normalise_answer(text, answer_type) if _BARE_NUMBER.match(text) else None
    if answer_type is AnswerType.choice:
        stripped = _CHOICE_FILLER.sub("", text)
        labels = _labels(choices)
        return stripped[0] if re.fullmatch(rf"\(?[{labels}]\)?\W*", stripped) else None
    if answer_type is AnswerType.boolean:
        return _normalise_boolean(text) if re.fullmatch(r"\W*(?i:yes|no|true|false)\W*", text) else None
    words = re.sub(r"\\text\{[^{}]*\}|\\[a-zA-Z]+", "", text)
    return None if re.search(r"[a-zA-Z]{4,}", words) else (normalise_expression(text) or None)


def extract_answer(text: str, answer_type: AnswerType, choices: list[str] | None = None) -> ParsedAnswer | None:
    """The final answer stated in `text`, normalised for its type, or None when there is none."""
    text = repair_control_chars(text)
    stated = False
    for trigger in reversed(list(ANSWER_TRIGGER.finditer(text))):
        line = _line_after(text, trigger.end())
        if not line or _PLACEHOLDER.match(_first_sentence(line)):
            continue
        stated = True
        if trigger.group("neg") or _NEGATED_START.match(line):
            # A negated answer line never yields the value it negates.
            rest = line if trigger.group("neg") else _NEGATED_START.sub("", line, count=1)
            answer = _after_negation(rest, answer_type, choices)
            return None if answer is None else ParsedAnswer(answer, AnswerSource.canonical)
        answer = normalise_answer(_first_sentence(line), answer_type, choices)
        if answer is not None:
            return ParsedAnswer(answer, AnswerSource.canonical)
    boxed = last_boxed(text)
    if boxed:
        answer = normalise_answer(boxed, answer_type, choices)
        if answer is not None:
            return ParsedAnswer(answer, AnswerSource.boxed)
    for pattern in (_GSM8K_MARKER, _ANSWER_COLON):
        found = pattern.findall(text)
        if found:
            answer = normalise_answer(found[-1].strip(), answer_type, choices)
            if answer is not None:
                return ParsedAnswer(answer, AnswerSource.marker)
    bare = _bare(text, answer_type, choices)
    if bare is not None:
        return ParsedAnswer(bare, AnswerSource.bare)
    if answer_type is AnswerType.choice:
        letter = _letter_form(text, choices)
        if letter is not None:
            return ParsedAnswer(letter, AnswerSource.letter_form)
    closing = _closing_sentence(text, answer_type, choices)
    if closing is not None:
        return ParsedAnswer(closing, AnswerSource.closing_sentence)
    if answer_type is AnswerType.number and not stated:
        # As MAmmoTH's evaluation does: with no answer line at all, the last number in the text.
        value = last_number(text)
        if value is not None:
            return ParsedAnswer(format_number(value), AnswerSource.fallback)
    return None
