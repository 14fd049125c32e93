"""The typed contract between every stage of cotforge."""

from cotforge.schemas.problem import CHOICE_LABELS, AnswerType, Problem
from cotforge.schemas.recipe import (
    CoTFormat,
    FormatMode,
    PromptMode,
    Recipe,
    SamplingParams,
    SourceSpec,
    TeacherBackend,
    TeacherSpec,
)
from cotforge.schemas.record import (
    AnswerOrigin,
    BuildReport,
    ChatMessage,
    CoTRecord,
    Rejection,
    RejectionReason,
    TokenUsage,
    subset_name,
)

SCHEMAS = {
    "problem": Problem,
    "teacher": TeacherSpec,
    "recipe": Recipe,
    "record": CoTRecord,
    "rejection": Rejection,
    "report": BuildReport,
}

__all__ = [
    "CHOICE_LABELS",
    "SCHEMAS",
    "AnswerOrigin",
    "AnswerType",
    "BuildReport",
    "ChatMessage",
    "CoTFormat",
    "CoTRecord",
    "FormatMode",
    "Problem",
    "PromptMode",
    "Recipe",
    "Rejection",
    "RejectionReason",
    "SamplingParams",
    "SourceSpec",
    "TeacherBackend",
    "TeacherSpec",
    "TokenUsage",
    "subset_name",
]
