"""Training settings: `TrainConfig` is the one declaration of a trainer setting, in groups (data, student, adapter,
rendering, optimisation, execution, distributed, output). Each setting is taken by its own name too (a flat name,
routed into its group: cotforge.schemas.groups), and `cotforge train` makes one option per setting from it
(cotforge/cli/options.py), with the field's description as its help and its default. `cotforge sweep` shares the
adapter, rendering, optimisation and execution groups whole and decides the others for each cell, so a setting added
to a shared group is offered by both commands. The paper's LLaMA-Factory settings are a named preset."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from cotforge.quality import DEDUP_HELP, MAX_PASS_RATE_HELP, MIN_JUDGE_HELP, MIN_PASS_RATE_HELP, SELECT_HELP
from cotforge.quality.filters import QualityFilter, parse_min_judge
from cotforge.quality.selection import parse_selection
from cotforge.schemas.groups import Group, Grouped
from cotforge.schemas.recipe import teacher_label
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


# A part given under a millionth of the examples gets none in any corpus a build makes: a slip, not a mixture.
MIN_SHARE = 1e-6


def weight_shares(weights: Mapping[str, float]) -> dict[str, float]:
    """Each part's share of the total weight, or a ValueError naming the weight that is not finite and above 0, the
    weights whose sum a float cannot hold, or a weight too small a share to give its part any example."""
    for name, weight in weights.items():
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"the weight of {name} must be a number above 0")
    total = sum(weights.values())
    if not math.isfinite(total):
        raise ValueError(f"the weights of {', '.join(weights)} add up to more than a float holds; scale them down")
    shares = {name: weight / total for name, weight in weights.items()}
    for name, share in shares.items():
        if share < MIN_SHARE:
            raise ValueError(
                f"the weight of {name} is too small a share ({share:.3g} of the total; each part needs at least "
                f"{MIN_SHARE:g})"
            )
    return shares


def cli(flag: str | None = None, short: str | None = None, default: str | None = None) -> dict[str, Any]:
    """How a field appears on the command line, when not as `--field-name`: its flag, a short flag, and the words
    the help gives for a None default."""
    return {"cli": {k: v for k, v in (("flag", flag), ("short", short), ("default", default)) if v is not None}}


class TrainConfigError(ValueError):
    """Settings that cannot train as asked; the message names them."""


def micro_batches_per_step(config: Optimisation, world: int) -> int:
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


class TrainData(Group):
    """What a run trains on, in which rows and order; a sweep decides it for each cell."""

    dataset: str = Field(description="The corpus: a build directory, a Parquet file or a Hub dataset id")
    subset: str | None = Field(
        default=None, description="Subset (e.g. gpt-4o-g5-cot)", json_schema_extra=cli(default="all of them")
    )
    mixture: dict[str, float] | None = Field(
        default=None,
        description="Train on several subsets at once, each a share of the examples by weight",
        json_schema_extra=cli("--mix", default="one subset (or all)"),
    )
    split: str = Field(default="train", description="Split of a Hub dataset")
    min_pass_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=MIN_PASS_RATE_HELP + " (a build directory)",
        json_schema_extra=cli(default="none"),
    )
    max_pass_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=MAX_PASS_RATE_HELP + " (a build directory)",
        json_schema_extra=cli(default="none"),
    )
    dedup: bool = Field(default=False, description=DEDUP_HELP + " (a build directory)")
    min_judge: list[str] | None = Field(
        default=None,
        description=MIN_JUDGE_HELP.replace("; repeatable", "; comma-separated") + " (a build directory)",
        json_schema_extra=cli(default="none"),
    )
    select: str | None = Field(
        default=None,
        description=SELECT_HELP + " (a build directory; after the other filters)",
        json_schema_extra=cli(default="every record"),
    )
    batching: Literal["auto", "packed", "grouped", "plain"] = Field(
        default="auto",
        description="auto: packed where the attention kernel attends each packed example on its own (flash "
        "attention, flex), else grouped; packed: a micro-batch's examples end to end in one row, attention kept "
        "within each; grouped: one per row, padded in length-sorted batches; plain: one per row, padded, in data "
        "order",
    )
    seed: int = Field(default=42, description="Seed for shuffling and initialisation")

    @model_validator(mode="after")
    def _one_choice_of_subsets(self) -> TrainData:
        if self.mixture is not None:
            if self.subset is not None:
                raise ValueError("mixture: give a subset or a mixture of subsets, not both")
            if len(self.mixture) < 2:
                raise ValueError("mixture: at least two subsets, each with a weight above 0")
            try:
                weight_shares(self.mixture)
            except ValueError as error:
                raise ValueError(f"mixture: {error}") from None
        return self

    @model_validator(mode="after")
    def _pass_rates_in_order(self) -> TrainData:
        self.quality_filter()
        return self

    def quality_filter(self) -> QualityFilter:
        """The filters on the corpus's quality signals and the selection (ValueError when the bounds cross or the
        selection is malformed); a score selection's scorer is the trainer's to set, once it loads the student."""
        select = parse_selection(self.select) if self.select is not None else None
        judged = parse_min_judge(self.min_judge)
        return QualityFilter(self.min_pass_rate, self.max_pass_rate, self.dedup, judged, select)


class Student(Group):
    """The model trained; a sweep names one per cell."""

    model: str = Field(description="Student: Hub id, local folder, or a .gguf file (dequantized)")
    gguf_file: str | None = Field(
        default=None,
        description="Load the student from this GGUF file inside its folder",
        json_schema_extra=cli(default="none"),
    )

    @model_validator(mode="before")
    @classmethod
    def _gguf_file_path(cls, data: Any) -> Any:
        """A student given as a path to a .gguf file: its folder and the file (split_gguf_path)."""
        if isinstance(data, dict) and isinstance(data.get("model"), str):
            model, gguf_file = split_gguf_path(data["model"], data.get("gguf_file"))
            if model != data["model"]:
                data = data | {"model": model, "gguf_file": gguf_file}
        return data


class Adapter(Group):
    """LoRA adapters on a frozen base, or (no rank) every parameter trained."""

    lora_rank: int | None = Field(
        default=None,
        gt=0,
        description="Train LoRA adapters of this rank on a frozen base (peft)",
        json_schema_extra=cli(default="full-parameter"),
    )
    lora_alpha: float | None = Field(
        default=None, gt=0, description="LoRA scaling numerator", json_schema_extra=cli(default="2 x --lora-rank")
    )
    lora_dropout: float = Field(default=0.0, ge=0, lt=1, description="Dropout on the LoRA path")
    lora_targets: list[str] | None = Field(
        default=None,
        description="Comma-separated modules to adapt, e.g. q_proj,v_proj",
        json_schema_extra=cli(default="every linear layer of the blocks"),
    )
    load_in_4bit: bool = Field(
        default=False, description="QLoRA: the frozen base in 4-bit NF4 (CUDA and bitsandbytes only)"
    )


class Rendering(Group):
    """How a record becomes the text the student is trained on."""

    template: str = Field(
        default="auto",
        description="auto (the tokenizer's chat template, else plain), chat, plain, alpaca, gemma, llama3",
    )
    reasoning: ReasoningView = Field(
        default=ReasoningView.drop,
        description="A reasoning teacher's trace: keep (trained on, before the rationale) or drop (rationale only)",
    )
    max_length: int = Field(default=1024, gt=8, description="Tokens per example; longer ones are cut and counted")


class Optimisation(Group):
    """The optimiser and its schedule; a sweep gives every cell the same."""

    epochs: float = Field(default=1.0, gt=0, description="Passes over the data")
    max_steps: int | None = Field(
        default=None,
        gt=0,
        description="Stop after N optimizer steps",
        json_schema_extra=cli(default="as many as --epochs take"),
    )
    learning_rate: float = Field(
        default=5e-5,
        gt=0,
        description="Peak learning rate (cosine, after --warmup-ratio)",
        json_schema_extra=cli("--lr"),
    )
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1, description="Share of the steps that warm the rate up")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay")
    micro_batch_size: int = Field(default=8, gt=0, description="Rows per forward pass, per process")
    global_batch_size: int = Field(
        default=64, gt=0, description="Rows per optimizer step over all processes (accumulates)"
    )
    max_grad_norm: float = Field(default=1.0, gt=0, description="Gradients are clipped to this norm")

    @model_validator(mode="after")
    def _global_batch_splits_into_micro_batches(self) -> Optimisation:
        micro_batches_per_step(self, 1)  # the number of processes is checked again when training starts
        return self


class Execution(Group):
    """How the run uses the device, and what it logs."""

    gradient_checkpointing: bool = Field(
        default=False, description="Recompute activations in backward: less memory, ~30% slower"
    )
    compile: bool = Field(default=False, description="torch.compile the model")
    memory_check: bool = Field(
        default=True, description="Refuse, before the first step, a run whose memory plan exceeds the device"
    )
    log_every: int = Field(default=1, gt=0, description="Log every N optimizer steps")


class Distributed(Group):
    """The model across the ranks of a torchrun launch; a sweep's cells each run in one process."""

    shard: Literal["ddp", "fsdp"] = Field(
        default="ddp", description="Under torchrun: ddp copies the model to each rank; fsdp shards it (FSDP2)"
    )
    cpu_offload: bool = Field(
        default=False, description="With --shard fsdp: parameters and optimizer state kept on the CPU"
    )


class Output(Group):
    """Where the student goes; a sweep decides it for each cell."""

    output_dir: str = Field(
        default="student", description="Where the student is saved", json_schema_extra=cli("--out", "-o")
    )
    merge_lora: bool = Field(default=False, description="Also save the base with the adapter merged in, to OUT/merged")
    save_every: int | None = Field(
        default=None,
        gt=0,
        description="Checkpoint every N steps (for --resume)",
        json_schema_extra=cli(default="only at the end"),
    )
    resume: bool = Field(default=False, description="Continue from the last checkpoint in --out")
    push_to_hub: str | None = Field(
        default=None, description="Also push the student to this model repo", json_schema_extra=cli(default="no push")
    )


class TrainConfig(Grouped):
    """A training run's settings in groups; every setting is also taken by its own name, flat
    (`TrainConfig(model=..., dataset=..., learning_rate=1e-4)`, YAML, `cotforge train --lr`), and `flat()` gives
    them back that way."""

    model_config = ConfigDict(extra="forbid")

    data: TrainData
    student: Student
    adapter: Adapter = Adapter()
    rendering: Rendering = Rendering()
    optimisation: Optimisation = Optimisation()
    execution: Execution = Execution()
    distributed: Distributed = Distributed()
    output: Output = Output()

    @model_validator(mode="after")
    def _adapter_settings_need_a_rank(self) -> TrainConfig:
        if self.adapter.lora_rank is None:
            settings = self.flat()
            given = [name for name in ADAPTER_ONLY if settings[name] not in (None, False, 0.0)]
            if given:
                these = "these apply" if len(given) > 1 else "this applies"
                raise ValueError(f"{', '.join(given)}: {these} only to LoRA; give lora_rank too")
        return self


def split_gguf_path(model: str, gguf_file: str | None) -> tuple[str, str | None]:
    """A student given as a path to a .gguf file: its folder and the file, as --gguf-file would name it."""
    if gguf_file or not model.endswith(".gguf"):
        return model, gguf_file
    path = PurePath(model)
    return str(path.parent), path.name


def model_label(model: str, gguf_file: str | None) -> str:
    """A short name for a student: its GGUF file's stem when it is loaded from one (the folder is a package's)."""
    return teacher_label(PurePath(gguf_file).stem if gguf_file else model)


ADAPTER_ONLY = ("lora_alpha", "lora_dropout", "lora_targets", "load_in_4bit", "merge_lora")
