"""What a running build tells its progress callback (the CLI draws it; a notebook may print or plot it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BuildProgress:
    """Where a running build stands, as the progress callback of run_build sees it a few times a second."""

    recipe: str
    total: int
    done: int
    accepted: int
    rejected: int
    failed: int
    in_flight: int
    completion_tokens: int
    cost_usd: float
    elapsed_s: float
    finished: bool = False  # the last call: the requests are over (the export follows)

    @property
    def projected_cost_usd(self) -> float:
        """The cost of the whole build at the rate so far."""
        return self.cost_usd / self.done * self.total if self.done else 0.0


ProgressCallback = Callable[[BuildProgress], None]
PROGRESS_EVERY_S = 0.25
