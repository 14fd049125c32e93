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


def make_teacher(spec: TeacherSpec, sampling: SamplingParams, store: Store | None) -> Teacher:
    """The client that the spec's backend names (its module is imported only when a teacher of it is built), made by
    its `for_build(spec, sampling, store)`: a build keeps its answers, and a batch's ids, in `store`, logs beside it."""
    module, _, name = spec.client.partition(":")
    client = getattr(importlib.import_module(module), name)
    return client.for_build(spec, sampling, store)


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
