"""Compare a predicted answer with the gold one, by answer type; check that a gold answer is usable at all."""

from __future__ import annotations

import math
import re
import threading

from cotforge.answers.extract import normalise_answer
from cotforge.answers.latex import braces_balanced, normalise_expression
from cotforge.answers.numbers import parse_number
from cotforge.answers.types import AnswerType

NUMERIC_REL_TOL = 1e-4
NUMERIC_ABS_TOL = 1e-6
_PLAIN_NUMBER = re.compile(r"^-?(?:\d+(?:,\d{3})*)?(?:\.\d+)?$")
# A two-argument command given one argument: gold cut short at its first '}' ('\frac{1}').
_CUT_SHORT = re.compile(r"\\(?:[dt]?frac|binom)\s*\{[^{}]*\}(?!\s*\{)")


class UnusableGold(ValueError):
    """A gold answer that cannot be read as an answer of its type: the problem cannot be scored."""


def normalise_gold(gold: str, answer_type: AnswerType, choices: list[str] | None = None) -> str:
    """The canonical form of a gold answer; dirty gold ('B(16).', 'is D.', '30. i.e C', 'OptionE -15') is read
    against the choices. Raises UnusableGold, with the reason, when it names no answer of its type."""
    text = str(gold).strip()
    if answer_type is AnswerType.expression:
        if not text or not braces_balanced(text) or _CUT_SHORT.search(text):
            raise UnusableGold(f"gold {text!r} is not a complete expression (cut short)")
        return text
    normalised = normalise_answer(text, answer_type, choices)
    if normalised is None:
        raise UnusableGold(f"gold {text!r} is not a {answer_type.value} answer")
    return normalised


def _as_latex(answer: str) -> str:
    """math_verify finds answers inside LaTeX delimiters; a bare answer gets them."""
    return answer if "\\boxed" in answer or "$" in answer else f"${answer}$"


def _expressions_match(predicted: str, gold: str) -> bool:
    p, g = normalise_expression(predicted), normalise_expression(gold)
    if not p or not g:
        return False
    if p.lower() == g.lower():
        return True
    if _PLAIN_NUMBER.match(p) and _PLAIN_NUMBER.match(g):
        return math.isclose(float(p.replace(",", "")), float(g.replace(",", "")), rel_tol=NUMERIC_REL_TOL)
    from math_verify import parse, verify

    # math_verify's timeouts use SIGALRM, which works only in the main thread.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    gold_parsed = parse(_as_latex(g), parsing_timeout=timeout)
    predicted_parsed = parse(_as_latex(p), parsing_timeout=timeout)
    if not gold_parsed or not predicted_parsed:
        return False
    return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=timeout))


def answers_match(predicted: str, gold: str, answer_type: AnswerType, choices: list[str] | None = None) -> bool:
    """True when `predicted` states the same answer as `gold` (numbers within a relative 1e-4). Two answers that
    do not read as answers of the type never match each other."""
    if answer_type is AnswerType.number:
        p, g = parse_number(predicted), parse_number(gold)
        if p is None or g is None:
            return False
        return math.isclose(p, g, rel_tol=NUMERIC_REL_TOL, abs_tol=NUMERIC_ABS_TOL)
    if answer_type is AnswerType.expression:
        return _expressions_match(predicted, gold)
    p, g = normalise_answer(predicted, answer_type, choices), normalise_answer(gold, answer_type, choices)
    return p is not None and p == g
