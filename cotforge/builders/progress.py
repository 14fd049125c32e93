"""What a running build tells its progress callback (the CLI draws it; a notebook may print or plot it)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cotforge.builders.store import Store
    from cotforge.schemas.record import CoTRecord


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
    judged: int | None = None  # verdicts stored by this run, where a judge judges the records as they arrive
    judge_pending: int = 0  # records x rubrics waiting for the judge or in flight

    @property
    def projected_cost_usd(self) -> float:
        """The cost of the whole build at the rate so far."""
        return self.cost_usd / self.done * self.total if self.done else 0.0


ProgressCallback = Callable[[BuildProgress], None]
PROGRESS_EVERY_S = 0.25


class RecordJudge(AbstractContextManager["RecordJudge"], Protocol):
    """Judges each record as the build stores it (cotforge.judging.live.LiveJudge), entered inside the build's
    lock: the build offers every accepted record, serves it beside its teachers, and closes it when they are done."""

    @property
    def judged(self) -> int: ...

    @property
    def pending(self) -> int: ...

    def offer(self, record: CoTRecord) -> None: ...

    def close(self) -> None: ...

    async def serve(self, records: Store) -> None: ...
