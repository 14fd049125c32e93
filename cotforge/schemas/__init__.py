"""The typed contract between every stage of cotforge."""

from cotforge.schemas.problem import CHOICE_LABELS, AnswerType, Problem
from cotforge.schemas.recipe import CoTFormat, FormatMode, PromptMode, Recipe, SamplingParams, SourceSpec
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
from cotforge.schemas.teachers import (
    BACKENDS,
    AnthropicTeacherSpec,
    OpenAIBatchTeacherSpec,
    OpenAITeacherSpec,
    RayTeacherSpec,
    RemoteTeacherBase,
    TeacherBase,
    TeacherSpec,
    VLLMTeacherSpec,
    parse_teacher,
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
    "BACKENDS",
    "CHOICE_LABELS",
    "SCHEMAS",
    "AnswerOrigin",
    "AnswerType",
    "AnthropicTeacherSpec",
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
    "TeacherBase",
    "TeacherSpec",
    "TokenUsage",
    "VLLMTeacherSpec",
    "parse_teacher",
    "subset_name",
]
