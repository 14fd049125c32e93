"""vLLM in this process, on this machine's GPUs (or CPU build): no API key, no list price."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge.schemas.teachers.base import TeacherBase

# An engine cotforge starts itself has no reasoning_effort parameter: its chat template switches thinking.
IN_PROCESS_EFFORT_REFUSAL = (
    "a model's thinking is switched by its chat template (extra_body: {chat_template_kwargs: {enable_thinking: true}})"
)


class VLLMEngineArgs(BaseModel):
    """vLLM's engine arguments, passed to `vllm.LLM` as given. Those cotforge knows are checked here; any other is
    checked against vllm.EngineArgs when the engine starts, so a typo is an error, not ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    max_model_len: int | None = Field(default=None, gt=0)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] | None = None
    enforce_eager: bool | None = None
    max_num_batched_tokens: int | None = Field(default=None, gt=0)
    max_num_seqs: int | None = Field(default=None, gt=0)
    tensor_parallel_size: int | None = Field(default=None, gt=0)
    data_parallel_size: int | None = Field(default=None, gt=0)
    pipeline_parallel_size: int | None = Field(default=None, gt=0)
    enable_prefix_caching: bool | None = None
    seed: int | None = None

    def given(self) -> dict[str, Any]:
        """The arguments the user set, as vLLM takes them."""
        return self.model_dump(exclude_none=True)


class VLLMTeacherSpec(TeacherBase):
    """vLLM in this process, on this machine's GPUs (or CPU build)."""

    client: ClassVar[str] = "cotforge.builders.teachers.vllm_local:VLLMTeacher"
    effort_refusal: ClassVar[str | None] = IN_PROCESS_EFFORT_REFUSAL
    # In-process vLLM takes chat template arguments; the rest of extra_body is for servers.
    extra_body_keys: ClassVar[tuple[str, ...] | None] = ("chat_template_kwargs",)

    backend: Literal["vllm"] = "vllm"
    engine_args: VLLMEngineArgs = Field(
        default_factory=lambda: VLLMEngineArgs(),
        description="vLLM's engine arguments (vllm.EngineArgs), tensor_parallel_size among them, passed to vLLM",
    )
