"""Training settings, with the paper's LLaMA-Factory settings as a named preset."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cotforge.schemas.record import ReasoningView

# arXiv 2502.18001 trained every student full-parameter with LLaMA-Factory using these (PAPER-NOTES.md §4).
PAPER_PRESET = {
    "learning_rate": 5e-5,
    "epochs": 3,
    "warmup_ratio": 0.0,
    "global_batch_size": 64,
    "max_length": 4096,
    "seed": 100,
    "max_grad_norm": 1.0,
}
PRESETS = {"paper": PAPER_PRESET}


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Hub id or local folder of the student")
    gguf_file: str | None = Field(default=None, description="Load the student from this GGUF file in `model`")
    dataset: str = Field(description="Build directory, Parquet file, or Hub dataset id")
    subset: str | None = None
    mixture: dict[str, float] | None = Field(
        default=None, description="Train on several subsets at once, each a share of the examples by weight"
    )
    split: str = "train"
    output_dir: str = "student"
    template: str = Field(default="auto", description="auto, chat, plain, alpaca, gemma or llama3")
    reasoning: ReasoningView = Field(
        default=ReasoningView.drop,
        description="A reasoning teacher's trace: keep (trained on, before the rationale) or drop (rationale only)",
    )
    max_length: int = Field(default=1024, gt=8)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0, description="Stop after this many optimizer steps")
    learning_rate: float = Field(default=5e-5, gt=0)
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    micro_batch_size: int = Field(default=8, gt=0, description="Rows per forward pass (per process)")
    global_batch_size: int = Field(default=64, gt=0, description="Rows per optimizer step, all processes")
    max_grad_norm: float = Field(default=1.0, gt=0)
    seed: int = 42
    batching: Literal["packed", "grouped", "plain"] = "packed"
    gradient_checkpointing: bool = False
    shard: Literal["ddp", "fsdp"] = Field(
        default="ddp", description="Under torchrun: ddp replicates the model; fsdp shards it (FSDP2) over the ranks"
    )
    cpu_offload: bool = Field(default=False, description="fsdp: keep parameters and optimizer state on the CPU")
    lora_rank: int | None = Field(default=None, gt=0, description="Train LoRA adapters of this rank (peft)")
    lora_alpha: float | None = Field(default=None, gt=0, description="LoRA scaling numerator; default 2 x rank")
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    lora_targets: list[str] | None = Field(
        default=None, description="Modules to adapt, e.g. q_proj, v_proj; default every linear layer of the blocks"
    )
    load_in_4bit: bool = Field(default=False, description="QLoRA: the frozen base in 4-bit NF4 (CUDA, bitsandbytes)")
    merge_lora: bool = Field(default=False, description="Also save the base with the adapter merged, in merged/")
    memory_check: bool = Field(default=True, description="Refuse a run whose memory plan exceeds the device")
    compile: bool = False
    save_every: int | None = Field(default=None, gt=0, description="Checkpoint every N optimizer steps")
    resume: bool = False
    log_every: int = Field(default=1, gt=0)
    push_to_hub: str | None = Field(default=None, description="Also push the model to this Hub repo")

    @model_validator(mode="after")
    def _global_batch_splits_into_micro_batches(self) -> TrainConfig:
        micro_batches_per_step(self, 1)  # the number of processes is checked again when training starts
        return self

    @model_validator(mode="after")
    def _one_choice_of_subsets(self) -> TrainConfig:
        if self.mixture is not None:
            if self.subset is not None:
                raise ValueError("mixture: give a subset or a mixture of subsets, not both")
            if len(self.mixture) < 2 or any(weight <= 0 for weight in self.mixture.values()):
                raise ValueError("mixture: at least two subsets, each with a weight above 0")
        return self

    @property
    def subsets_trained(self) -> str:
        """The subset, the mixture (`a:0.5 + b:0.5`) or `all`, as the model card says it."""
        if self.mixture is not None:
            return " + ".join(f"{name}:{weight:g}" for name, weight in self.mixture.items())
        return self.subset or "all"

    @model_validator(mode="after")
    def _adapter_settings_need_a_rank(self) -> TrainConfig:
        if self.lora_rank is None:
            given = [name for name in ADAPTER_ONLY if getattr(self, name) not in (None, False, 0.0)]
            if given:
                these = "these apply" if len(given) > 1 else "this applies"
                raise ValueError(f"{', '.join(given)}: {these} only to LoRA; give lora_rank too")
        return self


class TrainConfigError(ValueError):
    """Settings that cannot train as asked; the message names them."""


def micro_batches_per_step(config: TrainConfig, world: int) -> int:
    """Micro-batches each process runs per optimizer step; TrainConfigError unless the global batch splits evenly
    (a remainder would train fewer rows per step than asked, without a word)."""
    per_pass = config.micro_batch_size * world
    if config.global_batch_size % per_pass:
        processes = f" x {world} processes" if world > 1 else ""
        lower = max(per_pass, config.global_batch_size // per_pass * per_pass)
        raise TrainConfigError(
            f"global_batch_size {config.global_batch_size} is not a multiple of micro_batch_size "
            f"{config.micro_batch_size}{processes}; give a global batch of {lower} or {lower + per_pass}"
        )
    return config.global_batch_size // per_pass


ADAPTER_ONLY = ("lora_alpha", "lora_dropout", "lora_targets", "load_in_4bit", "merge_lora")
