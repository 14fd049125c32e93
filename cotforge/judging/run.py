"""Judge a build's accepted records: each record x rubric asked once of the judge (any teacher backend), its verdict
validated into the rubric's pydantic model and stored; then judge_scores.parquet, judge_rejections.parquet and the
per-subset means in cotforge_stats.json."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotforge.builders.pricing import cost_usd
from cotforge.builders.teachers import Failure, LiveStats, Outcome, Teacher, TeacherRequest, make_teacher
from cotforge.corpus import BuildDir
from cotforge.dataset_cards.stats import corpus_stats
from cotforge.judging.rubrics import Rubric, resolve_rubric
from cotforge.judging.store import JudgeStore
from cotforge.safety.lock import directory_lock
from cotforge.schemas.answer_format import asking_for, response_format
from cotforge.schemas.guides import CustomGuides
from cotforge.schemas.judge import JudgeRejection, JudgeScore, summarise
from cotforge.schemas.recipe import JudgeSpec, SamplingParams, TeacherSpec, parse_teacher
from cotforge.schemas.record import CoTRecord, TokenUsage

# This many failures in a row that would repeat for every request (refused key, unreachable server) stop the run.
FATAL_STREAK = 3


@dataclass
class JudgeReport:
    """`asked`: verdicts paid for by this run; `reused`: found in the store. Tokens and cost are over every
    judgement the build's files now show. `failed`: requests that got no reply, asked again on the next run."""

    asked: int = 0
    reused: int = 0
    scored: int = 0
    rejected: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    means: dict[str, dict[str, Any]] = field(default_factory=dict)  # subset -> rubric -> RubricSummary as JSON
    first_rejections: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.failed == 0


def judge_teacher(spec: JudgeSpec, rubric: Rubric) -> TeacherSpec:
    """The judge's teacher asked for this rubric's schema: response_format travels in the request body, as any
    extra_body key does, where the backend takes it (an engine cotforge starts itself, the Messages API: the prompt
    alone). Its label is the rubric's own, so a Batch API judge finds its own open batches, never another rubric's."""
    found = response_format(f"{rubric.name}_verdict", rubric.json_schema(), spec.structured_output)
    return asking_for(spec.teacher, found, label=f"{spec.teacher.label}-judge-{rubric.name}-{rubric.version}")


class RubricJudging:
    """One rubric's pending records, asked of the judge, each outcome stored as it arrives."""

    def __init__(self, spec: JudgeSpec, rubric: Rubric, store: JudgeStore, report: JudgeReport) -> None:
        self.teacher_spec = judge_teacher(spec, rubric)
        self.judge_model = spec.teacher.model
        self.rubric, self.store, self.report = rubric, store, report
        self.judged: dict[str, tuple[str, str]] = {}  # request id -> (record key, subset)
        self.fatal_streak = 0
        self.stats = LiveStats()
        self.max_tokens = spec.max_tokens

    def requests(
        self, records: Sequence[tuple[str, CoTRecord]], guides: CustomGuides | None
    ) -> Iterator[TeacherRequest]:
        rubric = self.rubric
        done = self.store.settled(rubric.name, rubric.version, self.judge_model)
        for subset, record in records:
            if record.key in done:
                self.report.reused += 1
                continue
            yield self.request(subset, record, guides)

    def request(self, subset: str, record: CoTRecord, guides: CustomGuides | None) -> TeacherRequest:
        """The judge's request for one record, its verdict awaited by sink."""
        rubric = self.rubric
        request_id = f"{rubric.name}-{rubric.version}-{record.key}"  # unique among every rubric's requests
        self.judged[request_id] = (record.key, subset)
        return TeacherRequest(request_id, rubric.messages(record, guides), 1)

    def sink(self, request: TeacherRequest, outcome: Outcome) -> None:
        rubric = self.rubric
        key, subset = self.judged[request.id]
        if isinstance(outcome, Failure) or not outcome:
            detail = outcome.detail if isinstance(outcome, Failure) else "the server returned no choices"
            self.store.put_failed(key, rubric.name, rubric.version, self.judge_model, detail)
            self.report.failed += 1
            self.fatal_streak = self.fatal_streak + 1 if isinstance(outcome, Failure) and outcome.fatal else 0
            self.stats.stop = self.stats.stop or self.fatal_streak >= FATAL_STREAK
            return
        self.fatal_streak = 0
        answer = outcome[0]
        usage = answer.usage or TokenUsage()
        origin = {
            "key": key,
            "subset": subset,
            "rubric": rubric.name,
            "rubric_version": rubric.version,
            "judge_model": self.judge_model,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": cost_usd(self.teacher_spec, usage),
        }
        verdict = rubric.parse(answer.text if answer.text else answer.refusal)
        if isinstance(verdict, str):
            why = f"refused: {verdict}" if answer.refusal and not answer.text else verdict
            self.store.put(JudgeRejection(**origin, why=why, raw_response=answer.text or answer.refusal))
        else:
            self.store.put(JudgeScore(**origin, score=verdict.score, reason=verdict.reason))  # type: ignore[attr-defined]
        self.report.asked += 1

    def teacher(self) -> Teacher:
        sampling = SamplingParams(temperature=0.0, max_tokens=self.max_tokens)
        return make_teacher(self.teacher_spec, sampling, self.store.teacher_store)

    async def run(self, records: Sequence[tuple[str, CoTRecord]], guides: CustomGuides | None) -> None:
        await self.teacher().run(self.requests(records, guides), self.sink, self.stats)


def judge_spec(
    path: str | Path,
    given: JudgeSpec | Mapping[str, Any] | None,
    model: str | None = None,
    teacher_options: Mapping[str, Any] | None = None,
    **changes: Any,
) -> JudgeSpec:
    """The judge: `given`, else the build recipe's judge section; `model` ('gpt-4o-mini', 'vllm:Qwen/...') replaces
    its teacher, `teacher_options` are set on the teacher, `changes` are other JudgeSpec fields (None: unchanged).
    ValueError when there is no judge, pydantic's ValidationError when a field is wrong."""
    found: JudgeSpec | Mapping[str, Any] | None = given
    if found is None:
        recipe = BuildDir(path).read_recipe()
        found = recipe.judge if recipe is not None else None
    data = found.model_dump(mode="json", exclude_defaults=True) if isinstance(found, JudgeSpec) else dict(found or {})
    if isinstance(data.get("teacher"), str):
        model = model or data["teacher"]
    if model is not None:
        data["teacher"] = parse_teacher(model).model_dump(mode="json", exclude_defaults=True)
    if "teacher" not in data:
        raise ValueError(f"{path}: its recipe has no judge section; give the judge's model (--model)")
    if teacher_options:
        data["teacher"] = {**data["teacher"], **teacher_options}
    data |= {name: value for name, value in changes.items() if value is not None}
    return JudgeSpec.model_validate({"rubrics": ["faithful"], **data})


def judge_build(
    path: str | Path,
    spec: JudgeSpec,
    rubrics: Sequence[Rubric] | None = None,
    subsets: Sequence[str] | None = None,
    limit: int | None = None,
    asked_live: int = 0,
) -> JudgeReport:
    """Judge the accepted records of the build at `path` (or of `subsets`; the first `limit` of each) with `spec`
    and its rubrics, or `rubrics` (Python ones) in their place. `asked_live`: verdicts the build that just ran paid
    for as its answers arrived (LiveJudge), reported as asked, not reused. Raises BuildDirError for an unreadable
    build, DirectoryInUse while a build or another judge writes it."""
    directory = BuildDir(path)
    with directory_lock(directory.path, "judge", create=False):
        report = _judge(directory, spec, rubrics, subsets, limit)
    report.asked += asked_live
    report.reused -= asked_live
    return report


def _judge(
    directory: BuildDir,
    spec: JudgeSpec,
    rubrics: Sequence[Rubric] | None,
    subsets: Sequence[str] | None,
    limit: int | None,
) -> JudgeReport:
    read = directory.read_subsets(subsets)
    recipe = directory.read_recipe()
    chosen = list(rubrics) if rubrics is not None else [resolve_rubric(r) for r in spec.rubrics]
    guides = recipe.guides if recipe is not None else None
    records = [(name, record) for name, rows in read.items() for record in rows[:limit]]
    report = JudgeReport()
    with JudgeStore(directory.judge_store_path) as store:
        for rubric in chosen:
            judging = RubricJudging(spec, rubric, store, report)
            asyncio.run(judging.run(records, guides))
            if judging.stats.stop:
                break
        _write_outputs(directory, store, read if subsets is None else None, report)
    return report


def refresh_judgements(path: str | Path) -> None:
    """A judged build's judge files and means made current with its records, asking nothing: its export rewrote
    cotforge_stats.json without the means, and new records have no verdict yet."""
    directory = BuildDir(path)
    if directory.judge_store_path.exists():
        with directory_lock(directory.path, "judge", create=False), JudgeStore(directory.judge_store_path) as store:
            _write_outputs(directory, store, None, JudgeReport())


def _write_outputs(
    directory: BuildDir, store: JudgeStore, read: dict[str, list[CoTRecord]] | None, report: JudgeReport
) -> None:
    """judge_scores.parquet, judge_rejections.parquet and the means, of every record of the build (`read`: the
    subsets already read, when they are all of them), and the report's totals over them."""
    whole = read if read is not None else directory.read_subsets()
    # Each verdict under the subset its record is in now: a verdict given as the answer arrived, or before an
    # --extend with another data set renamed the subsets, names the subset it had then.
    subset_of = {record.key: name for name, rows in whole.items() for record in rows}
    judged = [j.model_copy(update={"subset": subset_of[j.key]}) for j in store.latest(set(subset_of))]
    scores = [j for j in judged if isinstance(j, JudgeScore)]
    rejections = [j for j in judged if isinstance(j, JudgeRejection)]
    directory.write_judgements(scores, rejections)
    report.means = summarise(scores, rejections)
    _write_means(directory, report.means)
    report.scored, report.rejected = len(scores), len(rejections)
    report.prompt_tokens = sum(j.prompt_tokens for j in judged)
    report.completion_tokens = sum(j.completion_tokens for j in judged)
    priced = [j.cost_usd for j in judged if j.cost_usd is not None]
    report.cost_usd = sum(priced) if priced else None
    report.first_rejections = [f"{r.rubric} {r.key}: {r.why}" for r in rejections[:3]]


def means_from_files(directory: BuildDir) -> None:
    """A build whose judge files came without their store (a pull, whose statistics were made again from the
    records): each subset's rubric means in cotforge_stats.json, from judge_scores.parquet and
    judge_rejections.parquet; nothing when it has no judge scores."""
    if directory.judge_scores_path.exists():
        _write_means(directory, summarise(directory.read_judge_scores(), directory.read_judge_rejections()))


def _write_means(directory: BuildDir, means: dict[str, dict[str, Any]]) -> None:
    """Each subset's statistics gain its rubrics' means (statistics computed here where the build has none)."""
    stats = directory.read_stats()
    if stats is None:
        found = corpus_stats(directory.read_subsets(), directory.read_rejections())
        stats = {name: value.model_dump(mode="json") for name, value in found.items()}
    for name, entry in stats.items():
        if isinstance(entry, dict):
            entry["judge"] = means.get(name)
    directory.write_stats(stats)
