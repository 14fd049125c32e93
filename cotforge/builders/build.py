"""Run a build: plan -> teachers -> parse -> verify -> store, then Parquet subsets and a report."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cotforge.builders.builddir import RECIPE_FILE, STORE_FILE, write_outputs, write_report
from cotforge.builders.plan import REWRITE_PLACEHOLDER, Job, plan_jobs
from cotforge.builders.records import answer_to_row, failure_row, origin_fields
from cotforge.builders.store import FAILED, RECORD, Store, kind_of
from cotforge.builders.teachers import Failure, LiveStats, Outcome, TeacherRequest, make_teacher
from cotforge.builders.teachers.base import api_key_for
from cotforge.recipes.sources import LoadedSource
from cotforge.schemas.recipe import CoTFormat, FormatMode, Recipe, TeacherBackend
from cotforge.schemas.record import BuildReport, CoTRecord, Rejection, RejectionReason


class BuildInterrupted(Exception):
    """Ctrl-C or SIGTERM: everything answered so far is stored; the same command resumes."""

    def __init__(self, report: BuildReport) -> None:
        super().__init__("interrupted")
        self.report = report


@dataclass
class Tally:
    """Running totals for the live display and the budget."""

    total: int
    done: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def count(self, kind: str, cost: float | None) -> None:
        """One answer of the store's kind (record, rejection, failed) and its cost."""
        self.done += 1
        if kind == RECORD:
            self.accepted += 1
        elif kind == FAILED:
            self.failed += 1
        else:
            self.rejected += 1
        self.cost += cost or 0.0

    def add(self, row: CoTRecord | Rejection) -> None:
        """An answer that arrived in this run."""
        self.count(kind_of(row), row.cost_usd)
        self.completion_tokens += row.usage.completion_tokens


@dataclass(frozen=True)
class Pending:
    job: Job
    keys: list[str]
    messages: list[dict[str, str]]


class Build:
    def __init__(self, recipe: Recipe, sources: list[LoadedSource], store: Store, console: Console) -> None:
        self.recipe = recipe
        self.store = store
        self.console = console
        self.jobs = list(plan_jobs(recipe, sources))
        self.plan_keys = [key for job in self.jobs for key in job.keys]
        self.stats = LiveStats()
        self.tally = Tally(total=len(self.plan_keys))
        self.pending: dict[str, Pending] = {}
        self.started = time.monotonic()
        self.stopped: str | None = None

    # ---- requests --------------------------------------------------------------------------------------------

    def _direct_requests(self, settled: set[str]) -> list[tuple[Job, TeacherRequest]]:
        out = []
        for job in self.jobs:
            if job.prompt.format_mode is FormatMode.rewrite:
                continue
            missing = [k for k in job.keys if k not in settled]
            if missing:
                messages = [m.model_dump() for m in job.prompt.messages]
                request = TeacherRequest(id=missing[0], messages=messages, n=len(missing))
                self.pending[request.id] = Pending(job, missing, messages)
                out.append((job, request))
        return out

    def _rewrite_requests(self, settled: set[str]) -> list[tuple[Job, TeacherRequest]]:
        """Rewrite jobs, once the plain CoT of the same problem, teacher and level is stored."""
        plain_keys = {
            (job.problem.id, job.teacher.label, job.granularity): job.keys
            for job in self.jobs
            if job.fmt is CoTFormat.cot
        }
        out = []
        for job in self.jobs:
            if job.prompt.format_mode is not FormatMode.rewrite:
                continue
            plain = plain_keys[(job.problem.id, job.teacher.label, job.granularity)]
            for index, key in enumerate(job.keys):
                if key in settled:
                    continue
                source_key = plain[index] if index < len(plain) else plain[0]
                record = self.store.record(source_key)
                if record is None:
                    if source_key in settled:  # the plain CoT was rejected: there is nothing to rewrite
                        row = Rejection(
                            **origin_fields(job, key, self.recipe),
                            reason=RejectionReason.no_plain_cot,
                            detail=f"plain CoT {source_key} was rejected",
                        )
                        self.store.put(row)
                        self.tally.add(row)
                    continue  # not answered yet (failed or stopped): left pending for the next run
                text = job.prompt.messages[-1].content.replace(REWRITE_PLACEHOLDER, record.rationale)
                messages = [m.model_dump() for m in job.prompt.messages[:-1]] + [{"role": "user", "content": text}]
                request = TeacherRequest(id=key, messages=messages, n=1)
                self.pending[request.id] = Pending(job, [key], messages)
                out.append((job, request))
        return out

    # ---- answers ---------------------------------------------------------------------------------------------

    def sink(self, request: TeacherRequest, outcome: Outcome) -> None:
        item = self.pending.pop(request.id)
        if isinstance(outcome, Failure):
            rows = [failure_row(item.job, key, self.recipe, outcome.detail) for key in item.keys]
        else:
            rows = [
                answer_to_row(item.job, key, self.recipe, answer, item.messages)
                for key, answer in zip(item.keys, outcome, strict=False)  # fewer answers than keys: see below
            ]
            short = f"the server returned {len(outcome)} of {len(item.keys)} answers"
            rows += [failure_row(item.job, key, self.recipe, short) for key in item.keys[len(outcome) :]]
        for row in rows:
            self.store.put(row)
            self.tally.add(row)
        budget = self.recipe.max_cost_usd
        if budget is not None and self.tally.cost >= budget and not self.stats.stop:
            self.stats.stop = True
            self.stopped = f"budget of ${budget:g} spent (${self.tally.cost:.4f})"

    async def _ask(self, requests: list[tuple[Job, TeacherRequest]]) -> None:
        by_teacher: dict[str, list[TeacherRequest]] = defaultdict(list)
        for job, request in requests:
            by_teacher[job.teacher.label].append(request)
        specs = {t.label: t for t in self.recipe.teachers}
        teachers = [
            (make_teacher(specs[label], self.recipe.sampling, self.store), reqs) for label, reqs in by_teacher.items()
        ]
        await asyncio.gather(*(teacher.run(reqs, self.sink, self.stats) for teacher, reqs in teachers))

    async def run(self) -> None:
        settled = self.store.settled_keys()
        wanted = set(self.plan_keys)
        for key, kind, cost in self.store.outcomes():  # counts and costs only: no record is parsed twice
            if key in wanted and key in settled:
                self.tally.count(kind, cost)
        if self.recipe.max_cost_usd is not None and self.tally.cost >= self.recipe.max_cost_usd:
            self.stats.stop = True
            self.stopped = f"budget of ${self.recipe.max_cost_usd:g} already spent"
            return
        await self._ask(self._direct_requests(settled))
        if not self.stats.stop:
            await self._ask(self._rewrite_requests(self.store.settled_keys()))

    # ---- outputs ---------------------------------------------------------------------------------------------

    def export(self, out_dir: Path) -> BuildReport:
        rows = list(self.store.rows(self.plan_keys))
        records = [r for r in rows if isinstance(r, CoTRecord)]
        rejections = [r for r in rows if isinstance(r, Rejection)]
        subsets = write_outputs(out_dir, records, rejections)
        reasons = Counter(r.reason for r in rejections if r.reason is not RejectionReason.api_error)
        costs = [r.cost_usd for r in rows if r.cost_usd is not None]
        wall = time.monotonic() - self.started
        report = BuildReport(
            recipe=self.recipe.name,
            requested=len(self.plan_keys),
            accepted=len(records),
            rejected=dict(reasons),
            failed=sum(r.reason is RejectionReason.api_error for r in rejections),
            pending=len(self.plan_keys) - len(rows),
            stopped=self.stopped,
            prompt_tokens=sum(r.usage.prompt_tokens for r in rows),
            completion_tokens=sum(r.usage.completion_tokens for r in rows),
            cost_usd=sum(costs) if costs else None,
            wall_time_s=round(wall, 3),
            requests_per_s=round(self.stats.requests_sent / wall, 3) if wall > 0 else 0.0,
            subsets=subsets,
        )
        write_report(out_dir, report)
        return report


class LiveView:
    """A rich progress bar on a terminal; a plain log line every few seconds elsewhere (CI, files)."""

    def __init__(self, build: Build, console: Console, log_every_s: float = 10.0) -> None:
        self.build, self.console, self.log_every_s = build, console, log_every_s
        self.progress: Progress | None = None

    def _fields(self) -> dict[str, str]:
        tally, stats = self.build.tally, self.build.stats
        elapsed = max(time.monotonic() - self.build.started, 1e-9)
        projected = tally.cost / tally.done * tally.total if tally.done else 0.0
        return {
            "in_flight": str(stats.in_flight),
            "status": f"ok {tally.accepted} rej {tally.rejected} fail {tally.failed}",
            "speed": f"{tally.completion_tokens / elapsed:,.0f} tok/s",
            "cost": f"${tally.cost:.4f} of ~${projected:.4f}" if tally.cost else "$ n/a",
        }

    async def follow(self) -> None:
        tally = self.build.tally
        if self.console.is_terminal:
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
            task = self.progress.add_task(self.build.recipe.name, total=tally.total, **self._fields())
            with self.progress:
                while True:
                    self.progress.update(task, completed=tally.done, **self._fields())
                    await asyncio.sleep(0.25)
        else:
            while True:
                await asyncio.sleep(self.log_every_s)
                self.log()

    def log(self) -> None:
        tally = self.build.tally
        fields = self._fields()
        self.console.print(
            f"{self.build.recipe.name}: {tally.done}/{tally.total} | in flight {fields['in_flight']} | "
            f"{fields['status']} | {fields['speed']} | {fields['cost']}",
            highlight=False,
            soft_wrap=True,
        )


async def _run_with_view(build: Build, console: Console) -> None:
    view = LiveView(build, console)
    follower = asyncio.create_task(view.follow())
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main is not None:
        # SIGTERM ends a build the way Ctrl-C does: stop, keep what is stored, resume later.
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        await build.run()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        if not console.is_terminal:
            view.log()


def run_build(
    recipe: Recipe, sources: list[LoadedSource], out_dir: Path, console: Console | None = None
) -> BuildReport:
    """Build (or resume) the corpus of `recipe` in `out_dir`. Raises BuildInterrupted on Ctrl-C or SIGTERM."""
    console = console or Console(stderr=True)
    for teacher in recipe.teachers:
        if teacher.backend is not TeacherBackend.vllm:
            api_key_for(teacher)  # fail before anything starts, not in the middle
    out_dir.mkdir(parents=True, exist_ok=True)
    recipe_text = yaml.safe_dump(recipe.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    (out_dir / RECIPE_FILE).write_text(recipe_text, encoding="utf-8")
    with Store(out_dir / STORE_FILE) as store:
        build = Build(recipe, sources, store, console)
        try:
            asyncio.run(_run_with_view(build, console))
        except (KeyboardInterrupt, asyncio.CancelledError):
            build.stopped = "interrupted"
            raise BuildInterrupted(build.export(out_dir)) from None
        return build.export(out_dir)
