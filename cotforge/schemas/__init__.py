"""The typed contract between every stage of cotforge."""

from cotforge.schemas.problem import CHOICE_LABELS, AnswerType, Problem
from cotforge.schemas.recipe import (
    CoTFormat,
    FormatMode,
    OpenAIBatchTeacherSpec,
    OpenAITeacherSpec,
    PromptMode,
    RayTeacherSpec,
    Recipe,
    RemoteTeacherBase,
    SamplingParams,
    SourceSpec,
    TeacherBackend,
    TeacherBase,
    TeacherSpec,
    VLLMTeacherSpec,
    parse_teacher,
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
    "OpenAIBatchTeacherSpec",
    "OpenAITeacherSpec",
    "Problem",
    "PromptMode",
    "RayTeacherSpec",
    "Recipe",
    "Rejection",
    "RejectionReason",
    "RemoteTeacherBase",
    "SamplingParams",
    "SourceSpec",
    "TeacherBackend",
    "TeacherBase",
    "TeacherSpec",
    "TokenUsage",
    "VLLMTeacherSpec",
    "parse_teacher",
    "subset_name",
]
