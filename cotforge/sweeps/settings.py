"""What decides a sweep's numbers: its settings and the trainer's groups every cell shares (adapter, rendering,
optimisation, execution); each cell decides the others itself (its data, student, seed and output)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Literal

from pydantic import ConfigDict, Field, create_model, field_validator, model_validator

from cotforge.contamination import NEAR_VARIANT
from cotforge.quality.selection import Selection, parse_selection
from cotforge.schemas.groups import Grouped, flat_fields, group_class
from cotforge.schemas.record import ReasoningView
from cotforge.train.config import Adapter, Execution, Optimisation, Rendering, TrainConfig, cli

Axis = Literal["granularity", "format", "teacher"]
THINKING_DEFAULT = 1024  # a thinking student's trace budget in every cell, when trained with reasoning keep


class SweepError(ValueError):
    """A sweep that cannot run as asked; the message names the option."""


class SweepSettings(Grouped):
    """What decides a sweep's numbers. Saved in sweep.json: a re-run in the same folder must ask for the same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: str = Field(description="The build directory the arms come from")
    students: list[str] = Field(
        min_length=1,
        description="Student models (Hub id, folder or .gguf file), each trained on every arm",
        json_schema_extra=cli("--student"),
    )
    vary: Axis = Field(default="granularity", description="The axis compared: granularity, format or teacher")
    teacher: str | None = Field(
        default=None,
        description="The teacher held fixed (vary granularity or format)",
        json_schema_extra=cli(default="the one with the most levels"),
    )
    format: str | None = Field(
        default=None,
        description="The format held fixed (vary granularity or teacher)",
        json_schema_extra=cli("--format", default="cot"),
    )
    level: int | None = Field(
        default=None,
        description="The level held fixed (vary format or teacher)",
        json_schema_extra=cli(default="the most common, or 5"),
    )
    levels: list[int] | None = Field(
        default=None,
        description="Only these levels, e.g. 1,3,5 (vary granularity)",
        json_schema_extra=cli(default="all"),
    )
    arms: list[str] | None = Field(
        default=None,
        description="Compare exactly these arms of the teacher, repeatable: g<level> (a prompted level), native (the "
        "teacher's own reasoning trace), condensed-g<level> (that trace rewritten at a level), answer-only, human, "
        "or a mixture of them with weights, e.g. --arm native:0.5+g3:0.5 (native+g3: equal shares; each problem "
        "gets one part's rationale); cotforge.sweeps.arms reads them",
        json_schema_extra=cli("--arm", default="every level of --vary granularity"),
    )
    baselines: bool = Field(default=True, description="The answer-only and human baselines as arms too")
    eval_benchmark: str | None = Field(
        default=None,
        description="Evaluate on this built-in benchmark's --split instead of held-out problems",
        json_schema_extra=cli("--eval", default="hold out --holdout of the corpus's problems"),
    )
    eval_split: str = Field(default="test", description="Split of --eval", json_schema_extra=cli("--split"))
    holdout: float | None = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="Share of the shared problems held out for evaluation (none with --eval)",
    )
    holdout_similarity: float = Field(
        default=NEAR_VARIANT,
        gt=0,
        le=1,
        description="Questions at least this similar (0..1, rapidfuzz's normalised Indel similarity) are near-variants:"
        " held out together, never split between training and the hold-out",
    )
    eval_limit: int | None = Field(
        default=None, gt=0, description="At most N held-out questions", json_schema_extra=cli(default="all")
    )
    seeds: list[int] = Field(default=[1], min_length=1, description="Training seeds, comma-separated; each is a cell")
    gguf_file: str | None = Field(
        default=None,
        description="Load each student named by its folder from this GGUF file inside it (one named by its .gguf "
        "file loads that file)",
        json_schema_extra=cli(default="none"),
    )
    adapter: Adapter = Field(default=Adapter(), description="LoRA adapters or every parameter, in every cell")
    rendering: Rendering = Field(
        default=Rendering(max_length=512),
        description="The records as every cell trains on them; 512 tokens, the sweep's own default, hold a rationale "
        "of any level",
    )
    optimisation: Optimisation = Field(
        default=Optimisation(learning_rate=1e-4, global_batch_size=16),
        description="Every cell's optimiser. The sweep's own defaults, on purpose: it trains many short cells on a "
        "few hundred problems, where a higher peak rate and smaller optimizer steps let a cell learn within its step "
        "budget",
    )
    execution: Execution = Field(default=Execution(), description="How every cell uses its device")
    max_new_tokens: int = Field(default=256, gt=0, description="Most tokens generated per held-out answer")
    thinking_tokens: int = Field(
        default=0,
        ge=0,
        description="A thinking student's budget for its <think> trace, on top of --max-new-tokens for the answer",
        json_schema_extra=cli(default=f"{THINKING_DEFAULT} with --reasoning keep, else 0"),
    )
    eval_batch_size: int = Field(default=16, gt=0, description="Held-out questions generated together")
    run_sd: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="The run-to-run SD of an arm's accuracy (a share, e.g. 0.02) from an earlier sweep's report: used "
        "in the verdict instead of this sweep's own estimate (one seed has none) and in --dry-run's power",
        json_schema_extra=cli(default="estimated"),
    )
    adaptive: bool = Field(
        default=False,
        description="Run the seeds in rounds; after each, arms the verdict calls worse get no more cells, until one "
        "arm is left, --seeds run out or --cell-budget is spent",
    )
    cell_budget: int | None = Field(
        default=None, gt=0, description="--adaptive: at most N cells", json_schema_extra=cli(default="no limit")
    )
    prune: int | None = Field(
        default=None,
        gt=0,
        description="Score as --predict does (Rank-Surprisal Ratio, sweeps.predict), then train only the K arms with "
        "the lowest RSR per student, and the answer-only and human baselines; the report lists the arms skipped",
        json_schema_extra=cli(default="train every arm"),
    )

    selections: list[str] | None = Field(
        default=None,
        description="Beside each arm, an arm trained on the part of its records this keeps, named arm@selection; "
        "repeatable or comma-separated, e.g. --select rsr:0.5,random:0.5 (the half with the lowest Rank-Surprisal "
        "Ratio under each student, scored first as --predict does, and a random half of the same size; "
        "surprisal:F and rank:F rank by the baselines; random:F:SEED draws with another seed; "
        "cotforge.quality.selection)",
        json_schema_extra=cli("--select", default="arms whole"),
    )

    @model_validator(mode="before")
    @classmethod
    def _trainer_settings_of_before_groups(cls, data: Any) -> Any:
        """A sweep.json written before the trainer's settings came in groups holds them as `train`, a whole
        TrainConfig: its shared settings are read into their groups, and those each cell decides for itself (the
        first student, the corpus and the rest) are left out, so the same sweep resumes."""
        if not isinstance(data, dict) or not isinstance(data.get("train"), dict):
            return data
        train = TrainConfig.model_validate(data["train"]).flat()
        first = PurePath(str((data.get("students") or [""])[0]))
        if first.suffix == ".gguf" and train.get("gguf_file") == first.name:
            train["gguf_file"] = None  # split from the first student's path: no setting of the sweep
        shared = flat_fields(cls).keys() - cls.model_fields.keys()
        return {k: v for k, v in data.items() if k != "train"} | {
            k: v for k, v in train.items() if k in shared or k == "gguf_file"
        }

    def student_source(self, student: str) -> tuple[str, str | None]:
        """Where a student loads from: (folder or Hub id, GGUF file in it). A student named by its .gguf file
        carries its own file; otherwise --gguf-file applies, unless it came from the first student's .gguf path."""
        if student.endswith(".gguf"):
            path = PurePath(student)
            return str(path.parent), path.name
        return student, None if self.students[0].endswith(".gguf") else self.gguf_file

    @model_validator(mode="before")
    @classmethod
    def _thinking_budget(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("thinking_tokens") is None:
            rendering = data.get("rendering")  # or its reasoning given flat: the groups are made after this
            grouped = rendering.reasoning if isinstance(rendering, Rendering) else (rendering or {}).get("reasoning")
            reasoning = data.get("reasoning", grouped)
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


def sweep_settings_for(config: type[TrainConfig]) -> type[SweepSettings]:
    """SweepSettings whose shared groups are `config`'s (a TrainConfig subclass may extend a group), each with the
    sweep's own defaults."""
    extended = {}
    for name, field in SweepSettings.model_fields.items():
        group = group_class(field)
        theirs = group_class(config.model_fields[name]) if group and name in config.model_fields else None
        if theirs is not None and theirs is not group:
            default = theirs(**field.get_default().model_dump())
            extended[name] = (theirs, Field(default=default, description=field.description))
    return create_model("SweepSettings", __base__=SweepSettings, **extended) if extended else SweepSettings
