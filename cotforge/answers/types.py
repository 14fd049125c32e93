"""The vocabulary of answers: their types, choice labels, and where in a text an answer was found."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

CHOICE_LABELS = "ABCDEFGHIJ"


class AnswerType(str, Enum):
    number = "number"
    choice = "choice"
    boolean = "boolean"
    expression = "expression"


class AnswerSource(str, Enum):
    """Where the final answer was read, from the most to the least explicit."""

    canonical = "canonical"  # "The answer is X"
    boxed = "boxed"  # \boxed{X}
    marker = "marker"  # "#### X" or a line "Answer: X"
    letter_form = "letter_form"  # a choice named on the last line: "Answer E", "option C", "(C)"
    closing_sentence = "closing_sentence"  # "... the only option that fits is B."
    bare = "bare"  # the whole text is the answer (the paper's answer-only data: "B", "True", "145")
    fallback = "fallback"  # the last number of a text that states no answer at all
    custom = "custom"  # read by the user's own parse function (cotforge.CustomPrompt)
    schema = "schema"  # the `answer` field of the object an answer_format asked for


@dataclass(frozen=True)
class ParsedAnswer:
    answer: str
    source: AnswerSource
