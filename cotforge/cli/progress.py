"""The live displays of long commands, fed by the library's progress callbacks: a rich progress bar on a terminal, a
plain log line every few seconds elsewhere (CI, files). `build` shows its requests, `score` its batches."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from cotforge.builders.progress import BuildProgress

if TYPE_CHECKING:  # the scorer loads torch: not at the command line's start
    from cotforge.suitability import ScoreProgress


class LiveDisplay:
    """Call it with each progress value (it has `done`, `total`, `finished`); close it when the run ends, however it
    ends. A subclass says what the bar's title and fields are, and the plain line."""

    def __init__(self, console: Console, log_every_s: float = 5.0) -> None:
        self.console, self.log_every_s = console, log_every_s
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.last_log = time.monotonic()

    def title(self, now: Any) -> str:
        raise NotImplementedError

    def fields(self, now: Any) -> dict[str, str]:
        raise NotImplementedError

    def line(self, now: Any) -> str:
        """The plain log line; its fields, in the order the bar shows them."""
        return f"{self.title(now)}: {now.done}/{now.total} | " + " | ".join(self.fields(now).values())

    def __call__(self, now: Any) -> None:
        if self.console.is_terminal:
            self._bar(now)
        elif now.finished or time.monotonic() - self.last_log >= self.log_every_s:
            self.last_log = time.monotonic()
            self.console.print(self.line(now), highlight=False, soft_wrap=True)
        if now.finished:
            self.close()

    def _bar(self, now: Any) -> None:
        fields = self.fields(now)
        if self.progress is None:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(" | ".join(f"{{task.fields[{name}]}}" for name in fields)),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.progress.add_task(self.title(now), total=now.total, **fields)
            self.progress.start()
        assert self.task is not None
        self.progress.update(self.task, completed=now.done, **fields)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class BuildDisplay(LiveDisplay):
    def title(self, now: BuildProgress) -> str:
        return now.recipe

    def fields(self, now: BuildProgress) -> dict[str, str]:
        status = f"ok {now.accepted} rej {now.rejected} fail {now.failed}"
        if now.judged is not None:
            status += f" judged {now.judged} (waiting {now.judge_pending})"
        return {
            "in_flight": f"in flight {now.in_flight}",
            "status": status,
            "speed": f"{now.completion_tokens / now.elapsed_s:,.0f} tok/s",
            "cost": f"${now.cost_usd:.4f} of ~${now.projected_cost_usd:.4f}" if now.cost_usd else "$ n/a",
        }


class ScoreDisplay(LiveDisplay):
    """Records scored of those this run scores, and tokens per second."""

    def title(self, now: ScoreProgress) -> str:
        return f"score under {now.student}"

    def fields(self, now: ScoreProgress) -> dict[str, str]:
        return {"tokens": f"{now.tokens:,} tokens", "speed": f"{now.tokens_per_s:,.0f} tok/s"}
