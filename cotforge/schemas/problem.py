"""Problem: one item of a source data set, the unit every prompt is built from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cotforge.answers import CHOICE_LABELS, AnswerType, parse_number


class Problem(BaseModel):
    """A source question with its gold answer; `human_rationale` is the data set's own worked solution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="Stable id: the data set, split and the row's own id or index.")
    dataset: str = Field(min_length=1)
    split: str = Field(min_length=1)
    question: str
    choices: list[str] | None = Field(default=None, description="Choice texts, labelled A, B, C... in order.")
    answer: str = Field(description="The gold answer: a number, a choice letter, True/False or an expression.")
    answer_type: AnswerType
    human_rationale: str | None = None

    @field_validator("question", "answer")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _answer_fits_type(self) -> Problem:
        if self.answer_type is AnswerType.choice:
            if not self.choices or len(self.choices) < 2:
                raise ValueError("a choice problem needs at least two choices")
            if len(self.choices) > len(CHOICE_LABELS):
                raise ValueError(f"at most {len(CHOICE_LABELS)} choices are supported")
            labels = CHOICE_LABELS[: len(self.choices)]
            if self.answer not in labels:
                raise ValueError(f"answer {self.answer!r} is not among the choice labels {', '.join(labels)}")
        elif self.choices is not None:
            raise ValueError(f"choices are only allowed for answer_type 'choice', not {self.answer_type.value!r}")
        if self.answer_type is AnswerType.boolean and self.answer not in ("True", "False"):
            raise ValueError(f"a boolean answer must be 'True' or 'False', got {self.answer!r}")
        if self.answer_type is AnswerType.number and parse_number(self.answer) is None:
            raise ValueError(f"a number answer must be numeric, got {self.answer!r}")
        return self

    @property
    def choice_labels(self) -> str:
        return CHOICE_LABELS[: len(self.choices or [])]

    def student_prompt(self) -> str:
        return student_prompt(self.question, self.choices)


def student_prompt(question: str, choices: list[str] | None) -> str:
    """The question as a student sees it: with the choices laid out as in the paper's training data."""
    if not choices:
        return question
    listed = ", ".join(f"{label}: {text}" for label, text in zip(CHOICE_LABELS, choices, strict=False))
    return f"Q: {question} Answer choices: {listed}"
