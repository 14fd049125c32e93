"""vLLM engines as Ray actors, through Ray Data's LLM batch processor."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge.schemas.teachers.vllm import VLLMTeacherSpec


class RayOptions(BaseModel):
    """ray backend only: how Ray Data's LLM batch processor runs the teacher (vLLM engines as Ray actors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    replicas: int = Field(default=1, gt=0, description="vLLM engines, each a Ray actor with its own GPUs")
    batch_size: int = Field(default=32, gt=0, description="Prompts per batch sent to an engine")
    address: str | None = Field(
        default=None, description="A running Ray cluster, e.g. ray://head:10001; default: RAY_ADDRESS, else a local one"
    )


class RayTeacherSpec(VLLMTeacherSpec):
    """vLLM engines as Ray actors, through Ray Data's LLM batch processor."""

    client: ClassVar[str] = "cotforge.builders.teachers.ray_data:RayTeacher"
    extra_body_keys: ClassVar[tuple[str, ...] | None] = ()

    backend: Literal["ray"] = "ray"  # type: ignore[assignment]
    ray: RayOptions = Field(default_factory=lambda: RayOptions(), description="How Ray runs the engines")
