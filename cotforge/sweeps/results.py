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
    seeds: int
    accuracy: float = Field(description="Mean over seeds")
    accuracy_std: float | None = Field(description="Standard deviation over seeds; none with one seed")
    interval: tuple[float, float] = Field(description="95% bootstrap interval over test questions")
    mean_rationale_words: float
    vs_best: dict[str, float] | None = Field(
        default=None, description="Paired comparison with the student's best arm: difference, interval, p-values"
    )
    indistinguishable_from_best: bool = True


class SweepReport(BaseModel):
    settings: SweepSettings
    held_out: dict[str, int]
    steps: int
    cells: list[CellResult]
    arms: list[ArmResult]
    recommendation: dict[str, str]
    signals: SignalsTable | None = Field(
        default=None, description="Each arm's accuracy beside its corpus's signals; none when the corpus is unreadable"
    )
