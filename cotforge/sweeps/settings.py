"""What decides a sweep's numbers: its settings, the trainer settings every cell shares, and what each cell sets
itself."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cotforge.train.config import TrainConfig

Axis = Literal["granularity", "format", "teacher"]


class SweepError(ValueError):
    """A sweep that cannot run as asked; the message names the option."""


class SweepSettings(BaseModel):
    """What decides a sweep's numbers. Saved in sweep.json: a re-run in the same folder must ask for the same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: str = Field(description="The build directory the arms come from")
    students: list[str] = Field(min_length=1)
    vary: Axis = "granularity"
    teacher: str | None = Field(default=None, description="Fixed teacher (vary granularity or format)")
    format: str | None = Field(default=None, description="Fixed format (vary granularity or teacher)")
    level: int | None = Field(default=None, description="Fixed level (vary format or teacher)")
    levels: list[int] | None = Field(default=None, description="Only these levels (vary granularity)")
    baselines: bool = True
    eval_benchmark: str | None = None
    eval_split: str = "test"
    holdout: float | None = Field(default=0.3, gt=0, lt=1)
    eval_limit: int | None = Field(default=None, gt=0)
    seeds: list[int] = Field(default=[1], min_length=1)
    train: TrainConfig = Field(
        description="The trainer's settings for every cell; each cell sets its own student, data, seed and folder "
        "(CELL_DECIDES)"
    )
    max_new_tokens: int = Field(default=256, gt=0)
    eval_batch_size: int = Field(default=16, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _default_training(cls, data: Any) -> Any:
        if isinstance(data, dict) and "train" not in data and data.get("students") and data.get("corpus"):
            data = data | {"train": sweep_train_config(data["students"][0], data["corpus"])}
        return data

    @property
    def gguf_file(self) -> str | None:
        return self.train.gguf_file


# What a sweep decides for each cell, so no option sets it: the student and its data (model, dataset, subset,
# mixture, split), where the run goes (output_dir, resume, save_every, push_to_hub), the seed (--seeds), one example
# per row so the step budget means the same examples in every cell (batching), a plain model to evaluate
# (merge_lora); cells run in one process, so there is nothing to shard (shard, cpu_offload); and every arm trains on
# the same problems, so no filter drops some of one arm's (min_pass_rate, max_pass_rate, dedup).
CELL_DECIDES = (
    "model",
    "dataset",
    "subset",
    "mixture",
    "split",
    "output_dir",
    "resume",
    "save_every",
    "push_to_hub",
    "seed",
    "batching",
    "merge_lora",
    "shard",
    "cpu_offload",
    "min_pass_rate",
    "max_pass_rate",
    "dedup",
)


# The sweep's own defaults, on purpose: it trains many short cells on a few hundred problems, where a higher peak
# rate and smaller optimizer steps let a cell learn within its step budget, and 512 tokens hold a rationale of any
# level. Every other trainer setting is TrainConfig's default.
SWEEP_DEFAULTS: dict[str, Any] = {"learning_rate": 1e-4, "global_batch_size": 16, "max_length": 512}


def sweep_train_config(
    student: str, corpus: str, config_class: type[TrainConfig] = TrainConfig, **settings: Any
) -> TrainConfig:
    """The trainer settings of a sweep: SWEEP_DEFAULTS under the settings given; `student` and `corpus` stand in for
    what each cell sets itself."""
    return config_class(model=student, dataset=corpus, **{**SWEEP_DEFAULTS, **settings})
