"""Teacher backends: the OpenAI API or any compatible server, the OpenAI Batch API, in-process vLLM."""

from __future__ import annotations

from cotforge.builders.store import Store
from cotforge.builders.teachers.base import (
    Answer,
    Failure,
    LiveStats,
    MissingApiKey,
    Outcome,
    Sink,
    Teacher,
    TeacherRequest,
)
from cotforge.schemas.recipe import SamplingParams, TeacherBackend, TeacherSpec


def make_teacher(spec: TeacherSpec, sampling: SamplingParams, store: Store) -> Teacher:
    if spec.backend is TeacherBackend.openai:
        from cotforge.builders.teachers.openai_chat import OpenAITeacher

        return OpenAITeacher(spec, sampling)
    if spec.backend is TeacherBackend.openai_batch:
        from cotforge.builders.teachers.openai_batch import OpenAIBatchTeacher

        return OpenAIBatchTeacher(spec, sampling, store)
    from cotforge.builders.teachers.vllm_local import VLLMTeacher

    return VLLMTeacher(spec, sampling, store.path.parent if store is not None else None)


__all__ = [
    "Answer",
    "Failure",
    "LiveStats",
    "MissingApiKey",
    "Outcome",
    "Sink",
    "Teacher",
    "TeacherRequest",
    "make_teacher",
]
