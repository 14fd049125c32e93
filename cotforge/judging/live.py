"""Judging as the build goes: each accepted record is judged as the build stores it, beside the teacher's requests,
by a judge with its own concurrency and rate limit. Each verdict is committed to judge.sqlite as it arrives, so a
killed build resumes with the verdicts it paid for; whatever the build ends with unjudged (a verdict in flight at a
kill, a failed request, a record from an earlier run) the judging pass after the build asks for (judge_build)."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path

import aiohttp

from cotforge.builders.store import Store
from cotforge.builders.teachers import client_class
from cotforge.builders.teachers.openai_chat import OpenAITeacher
from cotforge.judging.rubrics import resolve_rubric
from cotforge.judging.run import JudgeReport, RubricJudging
from cotforge.judging.store import JudgeStore
from cotforge.schemas.guides import CustomGuides
from cotforge.schemas.recipe import JudgeSpec, Recipe
from cotforge.schemas.record import CoTRecord


def live_judge(recipe: Recipe, judge_store: Path) -> LiveJudge | None:
    """The recipe's judge, judging each record as the build stores it, where it answers one request at a time over
    HTTP (an OpenAI-compatible server, the Messages API). None where there is no judge; where it is a Batch API
    judge or an engine cotforge starts itself (asked once, after the build, for every record); and under `keep:
    majority`, whose outvoted answers are stored as records first and would be judged for nothing."""
    spec = recipe.judge
    if spec is None or recipe.keep == "majority" or not issubclass(client_class(spec.teacher), OpenAITeacher):
        return None
    return LiveJudge(spec, judge_store, recipe.guides)


class LiveJudge:
    """The build offers each record it stores (`offer`); `serve` judges them until `close` and the queue is empty.
    The queue holds keys only (the record is read back from the build's store when a worker takes it), so a judge
    slower than the teacher holds a key per record waiting, and at most the judge's max_concurrency verdicts are asked
    at once, through one rate limiter for every rubric."""

    def __init__(self, spec: JudgeSpec, judge_store: Path, guides: CustomGuides | None) -> None:
        self.spec, self.path, self.guides = spec, judge_store, guides
        self.report = JudgeReport()
        self.waiting: deque[tuple[str, int]] = deque()  # (record key, rubric index)
        self.in_flight = 0
        self._arrived = asyncio.Event()
        self._closed = False
        self._store: JudgeStore | None = None
        self._judgings: list[RubricJudging] = []
        self._teachers: list[OpenAITeacher] = []

    def __enter__(self) -> LiveJudge:
        """Opens judge.sqlite and makes the judge's clients: a damaged store or a missing API key fails here,
        before the build asks anything, not after it paid for every answer."""
        store = self._store = JudgeStore(self.path)
        self._judgings = [RubricJudging(self.spec, resolve_rubric(r), store, self.report) for r in self.spec.rubrics]
        made = [judging.teacher() for judging in self._judgings]
        self._teachers = [teacher for teacher in made if isinstance(teacher, OpenAITeacher)]
        assert len(self._teachers) == len(made), "live_judge chose a judge that answers one request at a time"
        first = self._teachers[0]
        for teacher in self._teachers[1:]:  # one judge model: one budget of requests, tokens and connections
            teacher.limiter, teacher.window = first.limiter, first.window
        return self

    def __exit__(self, *exc: object) -> None:
        if self._store is not None:
            self._store.close()

    @property
    def stopped(self) -> bool:
        """A rubric's requests failed in a row the way every other one would: the rest waits for the pass after."""
        return any(judging.stats.stop for judging in self._judgings)

    @property
    def judged(self) -> int:
        return self.report.asked

    @property
    def pending(self) -> int:
        return len(self.waiting) + self.in_flight

    def offer(self, record: CoTRecord) -> None:
        if self.stopped:
            return
        self.waiting.extend((record.key, index) for index in range(len(self._judgings)))
        self._arrived.set()

    def close(self) -> None:
        """No record comes after this one: `serve` ends once those waiting are judged."""
        self._closed = True
        self._arrived.set()

    async def serve(self, records: Store) -> None:
        first = self._teachers[0]
        async with first.session() as session:
            await asyncio.gather(*(self._work(session, records) for _ in range(first.spec.max_concurrency)))

    async def _work(self, session: aiohttp.ClientSession, records: Store) -> None:
        while not self.stopped:
            if not self.waiting:
                if self._closed:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            key, index = self.waiting.popleft()
            record = records.record(key)
            if record is None:  # stored, then outvoted or replaced: nothing to judge
                continue
            judging = self._judgings[index]
            request = judging.request(record.subset, record, self.guides)
            self.in_flight += 1
            try:
                outcome = await self._teachers[index].answer(session, request, judging.stats)
            finally:
                self.in_flight -= 1
            judging.sink(request, outcome)
