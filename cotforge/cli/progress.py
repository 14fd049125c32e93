"""The build's live display, fed by the engine's progress callback: a rich progress bar on a terminal, a plain log
line every few seconds elsewhere (CI, files)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from cotforge.builders.progress import BuildProgress


def _fields(now: BuildProgress) -> dict[str, str]:
    return {
        "in_flight": str(now.in_flight),
        "status": f"ok {now.accepted} rej {now.rejected} fail {now.failed}",
        "speed": f"{now.completion_tokens / now.elapsed_s:,.0f} tok/s",
        "cost": f"${now.cost_usd:.4f} of ~${now.projected_cost_usd:.4f}" if now.cost_usd else "$ n/a",
    }


class BuildDisplay:
    """Call it with each BuildProgress; close it when the build ends, however it ends."""

    def __init__(self, console: Console, log_every_s: float = 5.0) -> None:
        self.console, self.log_every_s = console, log_every_s
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.last_log = time.monotonic()

    def __call__(self, now: BuildProgress) -> None:
        if self.console.is_terminal:
            self._bar(now)
        elif now.finished or time.monotonic() - self.last_log >= self.log_every_s:
            self.last_log = time.monotonic()
            fields = _fields(now)
            self.console.print(
                f"{now.recipe}: {now.done}/{now.total} | in flight {fields['in_flight']} | {fields['status']} | "
                f"{fields['speed']} | {fields['cost']}",
                highlight=False,
                soft_wrap=True,
            )
        if now.finished:
            self.close()

    def _bar(self, now: BuildProgress) -> None:
        if self.progress is None:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "in flight {task.fields[in_flight]} | {task.fields[status]} | {task.fields[speed]} | "
                    "{task.fields[cost]}"
                ),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.progress.add_task(now.recipe, total=now.total, **_fields(now))
            self.progress.start()
        assert self.task is not None
        self.progress.update(self.task, completed=now.done, **_fields(now))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
