"""Reading and comparing answers: the one definition of "the answer" that schemas, sources, the builder, the
paper importer and the student's evaluation share.

It sits below every other cotforge package and imports none of them, so any layer may use it.
"""

from cotforge.answers.extract import ANSWER_TRIGGER, extract_answer, normalise_answer
from cotforge.answers.latex import last_boxed, normalise_expression, repair_control_chars
from cotforge.answers.numbers import format_number, parse_number
from cotforge.answers.types import CHOICE_LABELS, AnswerSource, AnswerType, ParsedAnswer
from cotforge.answers.verify import UnusableGold, answers_match, normalise_gold

__all__ = [
    "ANSWER_TRIGGER",
    "CHOICE_LABELS",
    "AnswerSource",
    "AnswerType",
    "ParsedAnswer",
    "UnusableGold",
    "answers_match",
    "extract_answer",
    "format_number",
    "last_boxed",
    "normalise_answer",
    "normalise_expression",
    "normalise_gold",
    "parse_number",
    "repair_control_chars",
]
