"""What decides a sweep's numbers: its settings, the trainer settings every cell shares, and what each cell sets
itself."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cotforge.contamination import NEAR_VARIANT
from cotforge.quality.selection import Selection, parse_selection
from cotforge.schemas.record import ReasoningView
from cotforge.train.config import TrainConfig

Axis = Literal["granularity", "format", "teacher"]
THINKING_DEFAULT = 1024  # a thinking student's trace budget in every cell, when trained with reasoning keep


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
    arms: list[str] | None = Field(
        default=None,
        description="Exactly these arms of the teacher (vary granularity): g3, native, condensed-g3, answer-only, "
        "human, or a mixture such as native:0.5+g3:0.5 (cotforge.sweeps.arms)",
    )
    baselines: bool = True
    eval_benchmark: str | None = None
    eval_split: str = "test"
    holdout: float | None = Field(default=0.3, gt=0, lt=1)
    holdout_similarity: float = Field(
        default=NEAR_VARIANT,
        gt=0,
        le=1,
        description="Questions at least this similar (0..1, rapidfuzz's normalised Indel similarity) are near-variants:"
        " held out together, and never one in training and one held out",
    )
    eval_limit: int | None = Field(default=None, gt=0)
    seeds: list[int] = Field(default=[1], min_length=1)
    train: TrainConfig = Field(
        description="The trainer's settings for every cell; each cell sets its own student, data, seed and folder "
        "(CELL_DECIDES)"
    )
    max_new_tokens: int = Field(default=256, gt=0)
    thinking_tokens: int = Field(
        default=0,
        ge=0,
        description="A thinking student's budget for its <think> trace, on top of max_new_tokens; when not given, "
        f"{THINKING_DEFAULT} with train.reasoning keep, else 0",
    )
    eval_batch_size: int = Field(default=16, gt=0)
    run_sd: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="The run-to-run SD of an arm's accuracy (a share) from an earlier sweep's report: enters the "
        "verdict's variance instead of this sweep's own estimate, which one seed cannot give",
    )
    adaptive: bool = Field(
        default=False,
        description="Run seeds in rounds; after each, arms the verdict calls worse get no more cells",
    )
    cell_budget: int | None = Field(default=None, gt=0, description="Adaptive sweeps: at most this many cells")
    prune: int | None = Field(
        default=None,
        gt=0,
        description="Train only the arms with the K lowest Rank-Surprisal Ratios under each student, scored before "
        "training (sweeps.predict), and the answer-only and human baselines; none: every arm",
    )

    selections: list[str] | None = Field(
        default=None,
        description="Beside each arm, an arm of the part of its records each selection keeps (rsr:0.5, random:0.5: "
        "cotforge.quality.selection), named arm@selection; none: the arms whole",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_training(cls, data: Any) -> Any:
        if isinstance(data, dict) and "train" not in data and data.get("students") and data.get("corpus"):
            data = data | {"train": sweep_train_config(data["students"][0], data["corpus"])}
        return data

    def student_source(self, student: str) -> tuple[str, str | None]:
        """Where a student loads from: (folder or Hub id, GGUF file in it). A student named by its .gguf file
        carries its own file; otherwise --gguf-file applies, unless it came from the first student's .gguf path."""
        if student.endswith(".gguf"):
            path = PurePath(student)
            return str(path.parent), path.name
        return student, None if self.students[0].endswith(".gguf") else self.train.gguf_file

    @model_validator(mode="before")
    @classmethod
    def _thinking_budget(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("thinking_tokens") is None:
            train = data.get("train")
            reasoning = train.reasoning if isinstance(train, TrainConfig) else (train or {}).get("reasoning")
            keep = getattr(reasoning, "value", reasoning) == ReasoningView.keep.value
            data = data | {"thinking_tokens": THINKING_DEFAULT if keep else 0}
        return data

    @model_validator(mode="after")
    def _budget(self) -> SweepSettings:
        if self.cell_budget is not None and not self.adaptive:
            raise SweepError("--cell-budget limits an adaptive sweep: give it with --adaptive")
        return self

    @field_validator("selections")
    @classmethod
    def _one_spelling(cls, selections: list[str] | None) -> list[str] | None:
        """Each selection in its one spelling (rsr:0.50 is rsr:0.5: the same cells, the same sweep), once."""
        if selections is None:
            return None
        try:
            texts = [parse_selection(text).text for text in selections]
        except ValueError as error:
            raise SweepError(str(error)) from None
        if len(set(texts)) != len(texts):
            raise SweepError(f"--select: give each selection once, got {', '.join(selections)}")
        return texts

    def selection_specs(self) -> list[Selection]:
        """The selections, parsed."""
        return [parse_selection(text) for text in self.selections or []]

    @model_validator(mode="after")
    def _named_arms(self) -> SweepSettings:
        """The arms' syntax is checked where they are resolved (cotforge.sweeps.arms), before any cell runs."""
        if self.arms is not None:
            if self.vary != "granularity" or self.levels is not None:
                raise SweepError("--arm names the arms itself: give it without --vary format/teacher or --levels")
            if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
                raise SweepError(f"--arm: give at least two different arms, got {', '.join(self.arms) or 'none'}")
        return self


# What a sweep decides for each cell, so no option sets it: the student and its data (model, dataset, subset,
# mixture, split), where the run goes (output_dir, resume, save_every, push_to_hub), the seed (--seeds), one example
# per row so the step budget means the same examples in every cell (batching), a plain model to evaluate
# (merge_lora); cells run in one process, so there is nothing to shard (shard, cpu_offload); and every arm trains on
# the same problems, so no filter drops some of one arm's (min_pass_rate, max_pass_rate, dedup, min_judge); a
# selection is an arm of its own (SweepSettings.selections).
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
    "min_judge",
    "select",
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
