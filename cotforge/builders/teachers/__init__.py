"""Teacher backends: the OpenAI API or any compatible server, the OpenAI Batch API, in-process vLLM, vLLM on Ray."""

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
    log_dir = store.path.parent if store is not None else None
    if spec.backend is TeacherBackend.ray:
        from cotforge.builders.teachers.ray_data import RayTeacher

        return RayTeacher(spec, sampling, log_dir)
    from cotforge.builders.teachers.vllm_local import VLLMTeacher

    return VLLMTeacher(spec, sampling, log_dir)


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
