"""Run a build: plan -> teachers -> parse -> verify -> store; then export.py writes the Parquet subsets and a report."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cotforge.builders.custom import CustomPrompt
from cotforge.builders.export import PlanFigures, RunFigures, export_build, failure_reason
from cotforge.builders.keyset import KeySet, chunked, key_digests
from cotforge.builders.outdir import check_build_dir, check_writable, with_custom_prompt
from cotforge.builders.plan import REWRITE_PLACEHOLDER, Job, asked_format, plan_jobs, planned_keys
from cotforge.builders.progress import PROGRESS_EVERY_S, BuildProgress, ProgressCallback, RecordJudge
from cotforge.builders.records import answer_to_row, failure_row, origin_fields
from cotforge.builders.store import FAILED, RECORD, Store, kind_of
from cotforge.builders.teachers import Failure, LiveStats, Outcome, TeacherRequest, make_teacher
from cotforge.builders.teachers.base import TeacherError
from cotforge.builders.topup import account, ask_rounds
from cotforge.corpus import BuildDir
from cotforge.recipes.sources import LoadedSource
from cotforge.recipes.sources.checked import SourceCache
from cotforge.safety.lock import directory_lock
from cotforge.schemas.recipe import CoTFormat, FormatMode, Recipe, SamplingParams
from cotforge.schemas.record import BuildReport, CoTRecord, Rejection, RejectionReason

# This many failures in a row that would repeat for every request (refused key, unreachable server) stop a build.
FATAL_STREAK = 3


class BuildInterrupted(Exception):
    """Ctrl-C or SIGTERM: everything answered so far is stored; the same command resumes."""

    def __init__(self, report: BuildReport) -> None:
        super().__init__("interrupted")
        self.report = report


class BuildFailed(Exception):
    """A teacher could not start or its engine died: what was stored is exported; the message says why."""

    def __init__(self, report: BuildReport, error: TeacherError) -> None:
        super().__init__(str(error))
        self.report = report
        self.usage = error.usage


@dataclass
class Tally:
    """Running totals for the progress callback and the budget."""

    total: int
    done: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    added: int = 0  # answers stored by this run

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
        self.added += 1
        self.count(kind_of(row), row.cost_usd)
        self.completion_tokens += row.usage.completion_tokens


@dataclass(frozen=True)
class Pending:
    job: Job
    keys: list[str]
    messages: list[dict[str, str]]
    sampling: SamplingParams | None = None  # a top-up attempt's own (its seed), else the recipe's


class Build:
    """One run of a build. Memory does not grow with the corpus beyond its keys, 16-byte digests: the sources are
    read again, batch by batch, and jobs planned again on each pass (their prompts built only for what is asked),
    requests go out as the teacher takes them, and the export streams from the store."""

    def __init__(
        self,
        recipe: Recipe,
        sources: list[LoadedSource],
        store: Store,
        custom: CustomPrompt | None = None,
        cache: SourceCache | None = None,
        judge: RecordJudge | None = None,
    ) -> None:
        self.recipe = recipe
        self.judge = judge
        self.answer_format = asked_format(recipe, custom)
        self.sources = sources
        self.custom = custom
        self.store = store
        self.cache = cache
        self.plan_keys = planned_keys(recipe, sources, custom, cache)
        self.stats = LiveStats()
        self.tally = Tally(total=len(self.plan_keys))
        self.pending: dict[str, Pending] = {}
        self.started = time.monotonic()
        self.run_id = store.start_run()
        self.run_updated = self.started
        self.stopped: str | None = None
        # The stored answers (any kind) the plan asks for and those it does not, once run() has counted them
        self.stored: tuple[int, int] | None = None
        self.asked = 0  # requests made by this run
        self.fatal_streak = 0

    def jobs(self) -> Iterator[Job]:
        return plan_jobs(self.recipe, self.sources, self.custom)

    # ---- requests --------------------------------------------------------------------------------------------

    def _direct_requests(self, settled: KeySet, teacher: str) -> Iterator[TeacherRequest]:
        for job in self.jobs():
            if job.teacher.label != teacher or job.format_mode.derived:
                continue
            missing = [k for k in job.keys if k not in settled]
            if missing:
                yield self.request(job, missing)

    def request(self, job: Job, keys: list[str], sampling: SamplingParams | None = None) -> TeacherRequest:
        """The request for `keys` of a job, its answers awaited by sink."""
        messages = [m.model_dump() for m in job.prompt.messages]
        request = TeacherRequest(id=keys[0], messages=messages, n=len(keys))
        self.pending[request.id] = Pending(job, keys, messages, sampling)
        self.asked += 1
        return request

    def _derived_requests(self, settled: KeySet, teacher: str) -> Iterator[TeacherRequest]:
        """Rewrite jobs, once the plain CoT of the same problem, teacher and level is stored; condensed jobs, once
        the native answer of the same problem and teacher is (its trace and answer line are what is condensed)."""
        source_keys = {
            (job.problem.id, job.granularity): job.keys
            for job in self.jobs()
            if job.teacher.label == teacher and job.fmt is CoTFormat.cot and not job.format_mode.derived
        }
        for job in self.jobs():
            if job.teacher.label != teacher or not job.format_mode.derived:
                continue
            condensed = job.format_mode is FormatMode.condensed
            source = source_keys[(job.problem.id, None if condensed else job.granularity)]
            for index, key in enumerate(job.keys):
                if key in settled:
                    continue
                source_key = source[index] if index < len(source) else source[0]
                record = self.store.record(source_key)
                if record is None:
                    if source_key in settled:  # the source answer was rejected: there is nothing to rewrite
                        reason, what = (
                            (RejectionReason.no_trace, "native answer")
                            if condensed
                            else (RejectionReason.no_plain_cot, "plain CoT")
                        )
                        row = Rejection(
                            **origin_fields(job, key, self.recipe),
                            reason=reason,
                            detail=f"{what} {source_key} was rejected",
                        )
                        self.store.put(row)
                        self.tally.add(row)
                    continue  # not answered yet (failed or stopped): left pending for the next run
                pasted = f"{record.reasoning}\n\n{record.rationale}" if condensed else record.rationale
                prompt = job.prompt
                text = prompt.messages[-1].content.replace(REWRITE_PLACEHOLDER, pasted)
                messages = [m.model_dump() for m in prompt.messages[:-1]] + [{"role": "user", "content": text}]
                request = TeacherRequest(id=key, messages=messages, n=1)
                self.pending[request.id] = Pending(job, [key], messages)
                self.asked += 1
                yield request

    # ---- answers ---------------------------------------------------------------------------------------------

    def sink(self, request: TeacherRequest, outcome: Outcome) -> None:
        item = self.pending.pop(request.id)
        recipe = self.recipe if item.sampling is None else self.recipe.model_copy(update={"sampling": item.sampling})
        if isinstance(outcome, Failure):
            rows = [failure_row(item.job, key, recipe, outcome.detail) for key in item.keys]
        else:
            rows = [
                answer_to_row(item.job, key, recipe, answer, item.messages)
                for key, answer in zip(item.keys, outcome, strict=False)  # fewer answers than keys: see below
            ]
            short = f"the server returned {len(outcome)} of {len(item.keys)} answers"
            rows += [failure_row(item.job, key, recipe, short) for key in item.keys[len(outcome) :]]
        self.store.put_all(rows)
        for row in rows:
            self.tally.add(row)
            if self.judge is not None and isinstance(row, CoTRecord):
                self.judge.offer(row)
        if time.monotonic() - self.run_updated > 1.0:  # a killed run's figures are at most a second old
            self._save_run()
        self.fatal_streak = self.fatal_streak + 1 if isinstance(outcome, Failure) and outcome.fatal else 0
        if self.fatal_streak >= FATAL_STREAK and not self.stats.stop:
            assert isinstance(outcome, Failure)
            self.stats.stop = True
            self.stopped = f"{FATAL_STREAK} requests in a row failed with: {failure_reason(outcome.detail)}"
        budget = self.recipe.max_cost_usd
        if budget is not None and self.tally.cost >= budget and not self.stats.stop:
            self.stats.stop = True
            self.stopped = f"budget of ${budget:g} spent (${self.tally.cost:.4f})"

    async def ask(
        self,
        requests: Callable[[KeySet, str], Iterator[TeacherRequest]],
        settled: KeySet,
        sampling: SamplingParams | None = None,
    ) -> None:
        """Each teacher with something to ask answers its requests, which are made as the teacher takes them; a
        teacher with nothing to ask is not started (an engine load, a batch poll). `sampling`: in place of the
        recipe's (a top-up round's)."""
        runs = []
        for spec in self.recipe.teachers:
            pending = requests(settled, spec.label)
            first = next(pending, None)
            if first is not None:
                asked = spec if self.answer_format is None else self.answer_format.teacher(spec)
                teacher = make_teacher(asked, sampling or self.recipe.sampling, self.store)
                runs.append(teacher.run(itertools.chain([first], pending), self.sink, self.stats))
        await asyncio.gather(*runs)

    async def run(self) -> None:
        settled = self._scan()
        if self.recipe.max_cost_usd is not None and self.tally.cost >= self.recipe.max_cost_usd:
            self.stats.stop = True
            self.stopped = f"budget of ${self.recipe.max_cost_usd:g} already spent"
            return
        if self.recipe.until_correct is not None:
            await ask_rounds(self)
            return
        if self.plan_keys.within(settled):
            return  # nothing to ask: no teacher is started
        await self.ask(self._direct_requests, settled)
        if not self.stats.stop:
            await self.ask(self._derived_requests, self.store.settled_keys())
        if not self.stats.stop and not self.asked and not self.plan_keys.within(self.store.settled_keys()):
            # Every job of the rows is answered, yet the plan says otherwise: its cache entry verified but is not
            # these rows' plan. Planned again from the rows, and counted again.
            self.plan_keys = planned_keys(self.recipe, self.sources, self.custom, self.cache, from_rows=True)
            self.tally = Tally(total=len(self.plan_keys), added=self.tally.added)
            self._scan()

    def _scan(self) -> KeySet:
        """The store's settled keys, read once: the planned answers among them counted into the tally, and the
        stored answers the plan does and does not ask for kept for the report. Counts and costs only: no record is
        parsed."""
        settled_parts = []
        planned_stored = unplanned = 0
        for outcomes in chunked(self.store.outcomes()):
            digests = key_digests([key for key, _, _ in outcomes])
            answered = np.array([kind != FAILED for _, kind, _ in outcomes], bool)
            settled_parts.append(digests[answered])
            planned = self.plan_keys.has(digests)
            planned_stored += int(planned.sum())
            unplanned += int((~planned).sum())
            for (_, kind, cost), wanted in zip(outcomes, (planned & answered).tolist(), strict=True):
                if wanted:
                    self.tally.count(kind, cost)
        self.stored = (planned_stored, unplanned)
        # The store's keys are its primary key: unique already, so sorted, not made unique again.
        return KeySet.of_unique(np.concatenate(settled_parts) if settled_parts else np.empty(0, "S16"))

    def _count_stored(self) -> tuple[int, int]:
        """The stored answers (any kind) the plan asks for and those it does not: as run() counted them when this
        run stored nothing since, else counted again."""
        if self.stored is not None and not self.tally.added:
            return self.stored
        planned = unplanned = 0
        for keys in chunked(self.store.stored_keys()):
            found = self.plan_keys.contains(keys)
            planned += int(found.sum())
            unplanned += int((~found).sum())
        return planned, unplanned

    # ---- outputs ---------------------------------------------------------------------------------------------

    def _save_run(self) -> float:
        """This run's figures into the store; returns its wall time so far."""
        self.run_updated = time.monotonic()
        wall = self.run_updated - self.started
        self.store.update_run(self.run_id, wall, self.stats.requests_sent, self.tally.added)
        return wall

    def export(self, out_dir: Path) -> BuildReport:
        """The outputs and the report (export.py), with this run's figures saved first."""
        wall = self._save_run()
        coverage = None
        if self.recipe.until_correct is not None:  # what is asked for depends on what was answered
            self.plan_keys, coverage = account(self)
        planned, unplanned = self._count_stored()
        run = RunFigures(
            self.run_id,
            wall,
            self.stats.requests_sent,
            self.tally.added,
            self.stats.engine_start_s,
            self.stopped,
        )
        plan = PlanFigures(len(self.plan_keys), planned, unplanned, coverage)
        return export_build(self.store, self.recipe, out_dir, run, plan)


def _progress(build: Build, finished: bool = False) -> BuildProgress:
    tally = build.tally
    return BuildProgress(
        recipe=build.recipe.name,
        total=tally.total,
        done=tally.done,
        accepted=tally.accepted,
        rejected=tally.rejected,
        failed=tally.failed,
        in_flight=build.stats.in_flight,
        completion_tokens=tally.completion_tokens,
        cost_usd=tally.cost,
        elapsed_s=max(time.monotonic() - build.started, 1e-9),
        finished=finished,
        judged=None if build.judge is None else build.judge.judged,
        judge_pending=0 if build.judge is None else build.judge.pending,
    )


async def _follow(build: Build, progress: ProgressCallback) -> None:
    while True:
        progress(_progress(build))
        await asyncio.sleep(PROGRESS_EVERY_S)


async def _run_reporting(build: Build, progress: ProgressCallback | None) -> None:
    follower = asyncio.create_task(_follow(build, progress)) if progress is not None else None
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    if main is not None:
        # SIGTERM ends a build the way Ctrl-C does: stop, keep what is stored, resume later.
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    judging = asyncio.create_task(build.judge.serve(build.store)) if build.judge is not None else None
    try:
        await build.run()
        if judging is not None and build.judge is not None:  # the verdicts of the last answers are awaited
            build.judge.close()
            await judging
    finally:
        if judging is not None and not judging.done():  # interrupted: verdicts in flight are asked again later
            judging.cancel()
            await asyncio.gather(judging, return_exceptions=True)
        loop.remove_signal_handler(signal.SIGTERM)
        if previous is not None:  # cotforge.entry's handler again, for the export that follows
            signal.signal(signal.SIGTERM, previous)
        if follower is not None and progress is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            progress(_progress(build, finished=True))


def run_build(
    recipe: Recipe,
    sources: list[LoadedSource],
    out_dir: Path,
    progress: ProgressCallback | None = None,
    extend: bool = False,
    custom: CustomPrompt | None = None,
    judge: RecordJudge | None = None,
) -> BuildReport:
    """Build (or resume) the corpus of `recipe` in `out_dir` (see check_build_dir), telling `progress` where it
    stands a few times a second and once more when the requests are over; `custom` asks the user's own prompt and
    reads answers with their parser; `judge` judges each accepted answer as it is stored. Raises BuildInterrupted
    on Ctrl-C or SIGTERM, BuildFailed when a teacher cannot go on, RecipeError, BuildDirError or StoreError before
    any request."""
    recipe = with_custom_prompt(recipe, custom)
    for teacher in recipe.teachers:
        teacher.api_key()  # a missing key fails before anything starts, not in the middle
    with directory_lock(out_dir, "build"):  # held to the end: a second build here stops before asking anything
        recipe = check_build_dir(out_dir, recipe, extend)
        check_writable(out_dir)
        build_dir = BuildDir(out_dir)
        with Store(build_dir.store_path) as store, judge if judge is not None else nullcontext():
            build_dir.write_recipe(recipe)
            build = Build(recipe, sources, store, custom, SourceCache(build_dir.cache_dir), judge)
            try:
                asyncio.run(_run_reporting(build, progress))
            except (KeyboardInterrupt, asyncio.CancelledError):
                build.stopped = "interrupted"
                raise BuildInterrupted(build.export(out_dir)) from None
            except TeacherError as error:
                build.stopped = str(error)
                raise BuildFailed(build.export(out_dir), error) from None
            return build.export(out_dir)
