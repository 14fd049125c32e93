"""What a sweep found: each arm's result, and the report that merges every cell."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cotforge.sweeps.adaptive import SkippedCell
from cotforge.sweeps.cells import CellResult
from cotforge.sweeps.settings import SweepSettings
from cotforge.sweeps.signals import SignalsTable

MIN_RANKED_ARMS = 4  # fewer arms give a rank correlation too few orders to mean anything


class ArmResult(BaseModel):
    student: str
    arm: str
    level: int | None
    seeds: int = Field(description="Seeds finished")
    seed_accuracies: dict[int, float] = Field(default_factory=dict, description="Accuracy of each finished seed")
    missing_seeds: list[int] = Field(
        default_factory=list, description="Seeds asked for but not finished: the arm is compared on fewer runs"
    )
    accuracy: float = Field(description="Mean over seeds")
    accuracy_std: float | None = Field(description="Standard deviation over seeds; none with one seed")
    interval: tuple[float, float] = Field(
        description="95% bootstrap interval: question groups resampled, the run-to-run term over its seeds"
    )
    mean_rationale_words: float
    mcs_p: float | None = Field(
        default=None,
        description="Model confidence set p-value (Hansen, Lunde and Nason 2011, range statistic): the arm could be "
        "the best at the 5% level when it is above 0.05; selection-aware (no arm is compared with an observed best)",
    )
    could_be_best: bool = Field(default=True, description="In the model confidence set at the 5% level")
    skipped_seeds: list[int] = Field(
        default_factory=list, description="Seeds the sweep did not run (SweepReport.skipped says why)"
    )
    rsr: float | None = Field(default=None, description="Rank-Surprisal Ratio of its training records (--predict)")
    mean_surprisal: float | None = Field(default=None, description="Their mean surprisal, nats (--predict)")
    mean_rank: float | None = Field(default=None, description="Their mean clipped rank (--predict)")


class StudentVerdict(BaseModel):
    """What the sweep can say for one student."""

    could_be_best: list[str] = Field(description="The model confidence set at the 5% level, best observed first")
    worse: list[str] = Field(default_factory=list, description="The arms eliminated from it, first eliminated first")
    groups: int | None = Field(default=None, description="Units the bootstrap resampled: near-variant groups")
    run_sd: float | None = Field(
        default=None, description="Run-to-run SD of an arm's accuracy beyond question-level noise, as used"
    )
    run_sd_source: str = Field(
        default="none", description="pooled (across arms with 2+ seeds), given (--run-sd) or none (one seed)"
    )
    run_degrees_of_freedom: int | None = Field(default=None, description="Of the pooled run-to-run SD: sum(seeds - 1)")
    pair_se: float | None = Field(default=None, description="Median standard error of a paired difference")
    gap_for_80_power: float | None = Field(
        default=None, description="The gap at which this design names a truly best arm alone with 80% power"
    )
    power: str = Field(default="", description="The power to name the best alone, as the report prints it")
    seed_correlation: float | None = Field(
        description="How much of a question's correctness the question fixes rather than the seed (intraclass "
        "correlation); none with one seed"
    )
    complete: bool = Field(description="Every arm has every seed it was to run")


class ScoreAgreement(BaseModel):
    """How well one score ranked one student's arms as training then did."""

    student: str
    score: str  # rsr, mean_surprisal or mean_rank
    arms: int = Field(description="Arms with both a score and a measured accuracy")
    spearman: float | None = Field(
        description="Spearman's rho of the negated score (lower predicts better) against accuracy: +1, the score's "
        f"order is the accuracy's; none with fewer than {MIN_RANKED_ARMS} arms or a constant side"
    )
    interval: tuple[float, float] | None = Field(description="95% bootstrap interval, arms resampled in pairs")


class SweepReport(BaseModel):
    settings: SweepSettings
    held_out: dict[str, int | float]
    steps: int
    cells: list[CellResult]
    arms: list[ArmResult]
    recommendation: dict[str, str]
    verdicts: dict[str, StudentVerdict] = Field(default_factory=dict)
    method: str = ""
    skipped: list[SkippedCell] = Field(
        default_factory=list, description="Cells the sweep did not run (adaptive rounds, --prune), and why"
    )
    prediction: list[ScoreAgreement] = Field(
        default_factory=list, description="--predict: how well each score ranked each student's arms"
    )
    signals: SignalsTable | None = Field(
        default=None, description="Each arm's accuracy beside its corpus's signals; none when the corpus is unreadable"
    )
