"""Compare a predicted answer with the gold one, by answer type."""

from __future__ import annotations

import math
import threading

from cotforge.builders.parse import normalise_answer, normalise_expression, parse_number
from cotforge.schemas.problem import AnswerType

NUMERIC_REL_TOL = 1e-4
NUMERIC_ABS_TOL = 1e-6


def _as_latex(answer: str) -> str:
    """math_verify finds answers inside LaTeX delimiters; a bare answer gets them."""
    return answer if "\\boxed" in answer or "$" in answer else f"${answer}$"


def _expressions_match(predicted: str, gold: str) -> bool:
    if normalise_expression(predicted) == normalise_expression(gold):
        return True
    from math_verify import parse, verify

    # math_verify's timeouts use SIGALRM, which works only in the main thread.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    gold_parsed = parse(_as_latex(gold), parsing_timeout=timeout)
    predicted_parsed = parse(_as_latex(predicted), parsing_timeout=timeout)
    if not gold_parsed or not predicted_parsed:
        return False
    return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=timeout))


def answers_match(predicted: str, gold: str, answer_type: AnswerType) -> bool:
    """True when `predicted` states the same answer as `gold` (numbers within a relative 1e-4)."""
    if answer_type is AnswerType.number:
        p, g = parse_number(predicted), parse_number(gold)
        if p is None or g is None:
            return False
        return math.isclose(p, g, rel_tol=NUMERIC_REL_TOL, abs_tol=NUMERIC_ABS_TOL)
    if answer_type is AnswerType.expression:
        return _expressions_match(predicted, gold)
    return normalise_answer(predicted, answer_type) == normalise_answer(gold, answer_type)
