"""What a sweep found: each arm's result, and the report that merges every cell."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cotforge.sweeps.cells import CellResult
from cotforge.sweeps.settings import SweepSettings
from cotforge.sweeps.signals import SignalsTable


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
    interval: tuple[float, float] = Field(description="95% two-level bootstrap interval (seeds and questions)")
    mean_rationale_words: float
    probability_best: float | None = Field(default=None, description="Share of bootstrap resamples where it is best")
    mcb_interval: tuple[float, float] | None = Field(
        default=None, description="Simultaneous 95% interval of (this arm - the best other arm), Hsu's MCB"
    )
    could_be_best: bool = Field(default=True, description="MCB: no other arm is better at the 5% level")
    vs_best: dict[str, float] | None = Field(
        default=None,
        description="Against the student's observed best arm on the same questions: difference, its interval, the "
        "sign-flip permutation p-value and the Holm-adjusted one",
    )


class StudentVerdict(BaseModel):
    """What the sweep can say for one student."""

    could_be_best: list[str] = Field(description="The arms that could be the best at the 5% level (MCB)")
    minimum_detectable_effect: float = Field(
        description="The smallest difference between two arms found with 80% power, with the MCB critical value"
    )
    seed_correlation: float | None = Field(
        description="How much of a question's correctness the question fixes rather than the seed (intraclass "
        "correlation); none with one seed"
    )
    complete: bool = Field(description="Every arm has every seed")


class SweepReport(BaseModel):
    settings: SweepSettings
    held_out: dict[str, int | float]
    steps: int
    cells: list[CellResult]
    arms: list[ArmResult]
    recommendation: dict[str, str]
    verdicts: dict[str, StudentVerdict] = Field(default_factory=dict)
    method: str = ""
    signals: SignalsTable | None = Field(
        default=None, description="Each arm's accuracy beside its corpus's signals; none when the corpus is unreadable"
    )
