"""Teacher clients, one module per backend; each backend's class in cotforge.schemas.teachers names its client."""

from __future__ import annotations

import importlib

from cotforge.builders.store import Store
from cotforge.builders.teachers.base import (
    Answer,
    Failure,
    LiveStats,
    Outcome,
    Sink,
    Teacher,
    TeacherRequest,
)
from cotforge.schemas.recipe import SamplingParams
from cotforge.schemas.teachers import MissingApiKey, TeacherSpec


def client_class(spec: TeacherSpec) -> type:
    """The client class the spec's backend names; its module is imported only now."""
    module, _, name = spec.client.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def make_teacher(spec: TeacherSpec, sampling: SamplingParams, store: Store | None) -> Teacher:
    """The client that the spec's backend names, made by its `for_build(spec, sampling, store)`: a build keeps its
    answers, and a batch's ids, in `store`, logs beside it."""
    return client_class(spec).for_build(spec, sampling, store)  # type: ignore[no-any-return]


__all__ = [
    "Answer",
    "Failure",
    "LiveStats",
    "MissingApiKey",
    "Outcome",
    "Sink",
    "Teacher",
    "TeacherRequest",
    "client_class",
    "make_teacher",
]
