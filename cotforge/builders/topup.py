"""Top-up sampling (a recipe's until_correct and max_attempts): each prompt (one problem asked of one teacher at
one level and format) is asked again while fewer than until_correct of its answers are correct and fewer than
max_attempts were asked. Attempts go in rounds: round r asks attempt r of every prompt still short. Attempt r's
store key is the key of sample r, so a resumed build recomputes from the store what is still owed, and no attempt
is paid for twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from math import comb
from pathlib import Path
from typing import Protocol

from cotforge.builders.keyset import KeySet
from cotforge.builders.plan import Job
from cotforge.builders.store import Store
from cotforge.builders.teachers import LiveStats, TeacherRequest
from cotforge.corpus import BuildDir
from cotforge.schemas.recipe import Recipe, SamplingParams
from cotforge.schemas.record import Coverage


class Build(Protocol):
    """What top-up needs of a build (cotforge.builders.build.Build)."""

    recipe: Recipe
    store: Store
    stats: LiveStats

    def jobs(self) -> Iterator[Job]: ...

    def request(self, job: Job, keys: list[str], sampling: SamplingParams | None = None) -> TeacherRequest: ...

    async def ask(
        self,
        requests: Callable[[KeySet, str], Iterator[TeacherRequest]],
        settled: KeySet,
        sampling: SamplingParams | None = None,
    ) -> None: ...


def attempt_sampling(sampling: SamplingParams, attempt: int) -> SamplingParams:
    """Attempt r's sampling: the recipe's seed (else 0) plus r, so each attempt is a new draw, recorded with it."""
    return sampling.model_copy(update={"seed": (sampling.seed or 0) + attempt})


def _correct_count(job: Job, correct: KeySet) -> int:
    return int(correct.contains(list(job.keys)).sum())


async def ask_rounds(build: Build) -> None:
    """Round after round, attempt r of each prompt still short and not answered yet; the store is read again
    before each round, so what a round (or an earlier run) answered decides the next."""
    for attempt in range(build.recipe.samples_per_prompt):
        if build.stats.stop:
            return
        sampling = attempt_sampling(build.recipe.sampling, attempt)
        requests = partial(_round_requests, build, attempt, build.store.correct_keys(), sampling)
        await build.ask(requests, build.store.settled_keys(), sampling)


def _round_requests(
    build: Build, attempt: int, correct: KeySet, sampling: SamplingParams, settled: KeySet, teacher: str
) -> Iterator[TeacherRequest]:
    until_correct = build.recipe.until_correct or 0
    for job in build.jobs():
        key = job.keys[attempt]
        if job.teacher.label == teacher and key not in settled and _correct_count(job, correct) < until_correct:
            yield build.request(job, [key], sampling)


def account(build: Build) -> tuple[KeySet, Coverage]:
    """The keys the build asks for now (every attempt stored, and the next attempt of each prompt still short
    that has one left: pending) and the coverage of the prompts."""
    recipe = build.recipe
    assert recipe.until_correct is not None and recipe.max_attempts is not None
    stored, correct = KeySet.of(build.store.stored_keys()), build.store.correct_keys()
    asked: list[str] = []
    attempts: Counter[int] = Counter()
    by_correct: Counter[int] = Counter()
    for job in build.jobs():
        keys = list(job.keys)
        have = stored.contains(keys).tolist()
        asked += [key for key, found in zip(keys, have, strict=True) if found]
        right = _correct_count(job, correct)
        owed = next((key for key, found in zip(keys, have, strict=True) if not found), None)
        if right < recipe.until_correct and owed is not None:
            asked.append(owed)
        attempts[sum(have)] += 1
        by_correct[min(right, recipe.until_correct)] += 1
    coverage = Coverage(
        until_correct=recipe.until_correct,
        max_attempts=recipe.max_attempts,
        prompts=sum(attempts.values()),
        covered=by_correct[recipe.until_correct],
        some_correct=sum(count for right, count in by_correct.items() if right > 0),
        none_correct=by_correct[0],
        attempts=dict(sorted(attempts.items())),
    )
    return KeySet.of(asked), coverage


def expected_attempts(pass_rate: float, until_correct: int, max_attempts: int) -> float:
    """Expected attempts of one prompt when each attempt is correct with `pass_rate`: the sum over t < cap of the
    chance that t attempts held fewer than until_correct correct ones (a negative binomial, capped)."""
    return sum(
        sum(comb(t, j) * pass_rate**j * (1 - pass_rate) ** (t - j) for j in range(min(until_correct, t + 1)))
        for t in range(max_attempts)
    )


def stored_pass_rate(out_dir: Path) -> float | None:
    """The share of correct answers among those already stored in `out_dir`; None where none is stored."""
    path = BuildDir(out_dir).store_path
    if not path.exists():
        return None
    with Store(path) as store:
        answered = len(store.settled_keys())
        return len(store.correct_keys()) / answered if answered else None


def estimate_line(recipe: Recipe, prompts: int, pass_rate: float | None, source: str) -> str:
    """The dry run's words on the attempts a top-up build is expected to ask."""
    assert recipe.until_correct is not None and recipe.max_attempts is not None
    cap = f"up to {recipe.max_attempts} a prompt, until {recipe.until_correct} correct"
    if pass_rate is None:
        return f"{cap}; give --pass-rate for an expected count"
    each = expected_attempts(pass_rate, recipe.until_correct, recipe.max_attempts)
    expected = f"expected {each:.2f} a prompt, {each * prompts:,.0f} in all"
    return f"{cap}; {expected}, at a pass rate of {pass_rate:.2f} ({source})"
