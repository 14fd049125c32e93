"""The teacher backends: one class each (its own file here), listed once in BACKENDS. The Recipe's teacher union,
the `backend:` names and the command line's `backend:MODEL` are made from this list, and the build finds each
backend's client through its class, so a backend not listed here cannot be asked for."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag, TypeAdapter

from cotforge.schemas.teachers.anthropic import AnthropicTeacherSpec
from cotforge.schemas.teachers.base import DEFAULT_BACKEND, MissingApiKey, RemoteTeacherBase, TeacherBase
from cotforge.schemas.teachers.openai import OpenAITeacherSpec
from cotforge.schemas.teachers.openai_batch import OpenAIBatchTeacherSpec
from cotforge.schemas.teachers.ray import RayOptions, RayTeacherSpec
from cotforge.schemas.teachers.vllm import VLLMEngineArgs, VLLMTeacherSpec

BACKENDS: tuple[type[TeacherBase], ...] = (
    OpenAITeacherSpec,
    OpenAIBatchTeacherSpec,
    VLLMTeacherSpec,
    RayTeacherSpec,
    AnthropicTeacherSpec,
)
BACKEND_NAMES = tuple(backend.backend_name() for backend in BACKENDS)


def _backend_of(value: Any) -> str:
    return str(value.get("backend", DEFAULT_BACKEND) if isinstance(value, dict) else value.backend)


TeacherSpec = Annotated[
    Union[tuple(Annotated[backend, Tag(backend.backend_name())] for backend in BACKENDS)],  # noqa: UP007
    Discriminator(_backend_of),
]
"""A teacher model and how to reach it: one member per backend, chosen by `backend` (default openai)."""

TEACHER: TypeAdapter[TeacherBase] = TypeAdapter(TeacherSpec)


def parse_teacher(text: str) -> TeacherBase:
    """'gpt-4o', 'openai:gpt-4o', 'openai-batch:gpt-4o', 'vllm:Qwen/Qwen2.5-7B-Instruct', 'ray:Qwen/...' or
    'anthropic:claude-sonnet-4-5': a backend's name and a colon, or the default backend's model."""
    backend, sep, model = text.partition(":")
    if sep and backend in BACKEND_NAMES:
        return TEACHER.validate_python({"model": model, "backend": backend})
    return TEACHER.validate_python({"model": text})


__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "TEACHER",
    "AnthropicTeacherSpec",
    "MissingApiKey",
    "OpenAIBatchTeacherSpec",
    "OpenAITeacherSpec",
    "RayOptions",
    "RayTeacherSpec",
    "RemoteTeacherBase",
    "TeacherBase",
    "TeacherSpec",
    "VLLMEngineArgs",
    "VLLMTeacherSpec",
    "parse_teacher",
]
