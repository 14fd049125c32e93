"""The plan of a build: every (problem, teacher, level, format, sample) answer to ask for, with its store key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cotforge.builders.custom import CustomPrompt
from cotforge.builders.keyset import KeySet
from cotforge.builders.pricing import cost_usd
from cotforge.recipes.formats import FORMATS
from cotforge.recipes.prompts import (
    Prompt,
    build_condense_prompt,
    build_native_prompt,
    build_prompt,
    build_rewrite_prompt,
    prompt_version,
)
from cotforge.recipes.sources import LoadedSource
from cotforge.recipes.sources.checked import ESTIMATE, PLAN, SOURCE, SourceCache, stamp
from cotforge.schemas.answer_format import AnswerFormat
from cotforge.schemas.guides import CustomGuides
from cotforge.schemas.problem import AnswerType, Problem
from cotforge.schemas.recipe import CoTFormat, FormatMode, PromptMode, Recipe, TeacherSpec
from cotforge.schemas.record import TokenUsage

# Rough expected completion length: mean words per level of the paper's GPT-4o SVAMP data (level 0: the answer
# line), times the format's length relative to plain CoT (recipes/formats.py), at about 1.35 tokens per word.
_WORDS_PER_LEVEL = {0: 5, 1: 35, 2: 39, 3: 50, 4: 59, 5: 70, 6: 81}
_FAMILY_LENGTH = {AnswerType.number: 1.0, AnswerType.expression: 1.6, AnswerType.choice: 1.0, AnswerType.boolean: 1.0}
_TOKENS_PER_WORD = 1.35
_CHARS_PER_TOKEN = 4.0
REWRITE_PLACEHOLDER = "{plain_rationale}"
# A reasoning teacher's trace per answer, in tokens, by reasoning_effort (None: the model's default, taken as
# medium). An assumption for the estimate, not a measurement: the trace is billed as output, and it can reach the
# whole token budget, which caps it here.
ASSUMED_TRACE_TOKENS = {"minimal": 100, "low": 400, "medium": 1200, "high": 3000, None: 1200}


_PROBLEM_SLOT, _SAMPLE_SLOT = "\x00problem\x00", "\x00sample\x00"


@dataclass(frozen=True)
class KeyTemplate:
    """The JSON that the store keys of one (teacher, level, format, prompt version) hash, made once, with slots for
    the problem and the sample: a plan of a million answers serialises each problem once and only hashes per key.
    Any change to what would be asked gives a new key."""

    head: str
    middle: str
    tail: str

    @classmethod
    def make(
        cls,
        teacher: TeacherSpec,
        recipe: Recipe,
        granularity: int | None,
        fmt: CoTFormat,
        prompt_version: str,
        sampling: dict[str, Any] | None = None,
        format_mode: FormatMode | None = None,
    ) -> KeyTemplate:
        """`sampling`: the recipe's sampling as dumped here, when the caller computes it once for many keys;
        `format_mode`: the native arm's or a condensed level's, in place of the recipe's."""
        payload = {
            "problem": _PROBLEM_SLOT,
            "teacher": [teacher.backend, teacher.model, teacher.endpoint],
            "sampling": sampling if sampling is not None else _sampling_part(recipe),
            "granularity": granularity,
            "format": fmt.value,
            "format_mode": (format_mode or recipe.format_mode).value,
            "prompt_version": prompt_version,
            "sample": _SAMPLE_SLOT,
        }
        if teacher.reasoning_identity():  # only where set: a plain teacher's keys stay what they were
            payload["reasoning"] = teacher.reasoning_identity()
        text = json.dumps(payload, sort_keys=True)
        head, _, rest = text.partition(json.dumps(_PROBLEM_SLOT))
        middle, _, tail = rest.partition(json.dumps(_SAMPLE_SLOT))
        if "\\u0000" in head + middle + tail:  # a field held a NUL: the slots would be ambiguous
            raise ValueError("a teacher or prompt field holds a NUL character")
        return cls(head, middle, tail)

    def keys(self, problem: Problem, n: int) -> tuple[str, ...]:
        """The keys of samples 0..n-1 of `problem`."""
        fields = [problem.dataset, problem.split, problem.id, problem.question, problem.answer]
        start = self.head + json.dumps(fields) + self.middle
        return tuple(hashlib.sha256(f"{start}{i}{self.tail}".encode()).hexdigest()[:32] for i in range(n))


def _sampling_part(recipe: Recipe) -> dict[str, Any]:
    return recipe.sampling.model_dump(mode="json", exclude={"n"})


@dataclass(frozen=True)
class Job:
    """One prompt to one teacher; it asks for `recipe.samples_per_prompt` answers (top-up: attempts, not all asked),
    each with its own key. The chat itself is built only when asked for (`prompt`): a resume of a million answers
    needs their keys, not their prompts."""

    problem: Problem
    teacher: TeacherSpec
    granularity: int | None  # None: the native arm, asked at no level
    fmt: CoTFormat
    format_mode: FormatMode
    prompt_mode: PromptMode
    prompt_version: str
    keys: tuple[str, ...]
    custom: CustomPrompt | None = None
    guides: CustomGuides | None = None  # the recipe's own level guides, for directly asked levels
    answer_format: AnswerFormat | None = None  # the answer asked as a JSON object of this model

    @property
    def prompt(self) -> Prompt:
        """The chat to send. A rewrite job's last turn holds REWRITE_PLACEHOLDER where the plain CoT goes, a
        condensed job's where the native trace goes. With an answer format, the last turn ends with its schema."""
        made = self._prompt()
        if self.answer_format is None:
            return made
        *head, last = made.messages
        asked = last.model_copy(update={"content": f"{last.content}\n\n{self.answer_format.instruction()}"})
        return Prompt([*head, asked], made.prompt_version, made.format_mode)

    def _prompt(self) -> Prompt:
        if self.custom is not None:
            return Prompt(self.custom.messages(self.problem), self.prompt_version, self.format_mode)
        if self.granularity is None:
            return build_native_prompt(self.problem, self.prompt_mode)
        if self.format_mode is FormatMode.condensed:
            return build_condense_prompt(self.problem, self.granularity, self.prompt_mode, REWRITE_PLACEHOLDER)
        if self.format_mode is FormatMode.rewrite:
            return build_rewrite_prompt(self.problem, self.granularity, self.fmt, self.prompt_mode, REWRITE_PLACEHOLDER)
        return build_prompt(self.problem, self.granularity, self.fmt, self.prompt_mode, self.guides)


def combinations(recipe: Recipe) -> list[tuple[int, CoTFormat]]:
    """The (level, format) pairs of a recipe; level 0 (answer only) has no rationale, so it is plain CoT alone."""
    return [(g, f) for g in recipe.granularities for f in recipe.formats if g > 0 or f is CoTFormat.cot]


def asked(recipe: Recipe) -> list[tuple[int | None, CoTFormat, bool]]:
    """The (level, format, condensed) asked of each teacher for each problem; level None is the native arm."""
    native = [(None, CoTFormat.cot, False)] if recipe.native else []
    condensed = [(level, CoTFormat.cot, True) for level in recipe.condensed]
    return [(g, f, False) for g, f in combinations(recipe)] + native + condensed


def asked_format(recipe: Recipe, custom: CustomPrompt | None) -> AnswerFormat | None:
    """The model answers are asked in: the custom prompt's, else the recipe's; None: free text."""
    if custom is not None and custom.asked_format is not None:
        return custom.asked_format
    return None if recipe.answer_format is None else recipe.answer_format.resolved()


def plan_jobs(recipe: Recipe, sources: list[LoadedSource], custom: CustomPrompt | None = None) -> Iterator[Job]:
    """Every job of the build, source by source, in a fixed order. A rewrite job (a format other than plain CoT in
    rewrite mode) is asked once the plain CoT of the same problem, teacher and level is stored, a condensed job
    once the native answer is. With `custom`, every job asks the user's prompt."""
    sampling = _sampling_part(recipe)
    pairs = [
        (g, f, FormatMode.rewrite if recipe.format_mode is FormatMode.rewrite and f is not CoTFormat.cot else None)
        for g, f in combinations(recipe)
    ]
    templates: dict[tuple[int, int, CoTFormat, str], KeyTemplate] = {}
    answer_format = asked_format(recipe, custom)
    # A custom prompt's version holds its own format's digest; a recipe's format is added to the built-in one's.
    schema_part = f"-json-{answer_format.digest}" if answer_format is not None and custom is None else ""
    traced: dict[tuple[int, AnswerType, int | None], tuple[str, KeyTemplate]] = {}
    for source in sources:
        for problem in source:
            for index, teacher in enumerate(recipe.teachers):
                for granularity, fmt, rewrite in pairs:
                    mode = rewrite or FormatMode.direct
                    version = (
                        custom.prompt_version
                        if custom is not None
                        else prompt_version(
                            problem.answer_type, granularity, fmt, recipe.prompt_mode, mode, recipe.guides
                        )
                        + schema_part
                    )
                    shape = (index, granularity, fmt, version)
                    if shape not in templates:
                        templates[shape] = KeyTemplate.make(teacher, recipe, granularity, fmt, version, sampling)
                    keys = templates[shape].keys(problem, recipe.samples_per_prompt)
                    yield Job(
                        problem,
                        teacher,
                        granularity,
                        fmt,
                        mode,
                        recipe.prompt_mode,
                        version,
                        keys,
                        custom,
                        recipe.guides,
                        answer_format,
                    )
                if recipe.native:
                    for level in (None, *recipe.condensed):
                        yield _trace_job(problem, teacher, index, recipe, sampling, traced, level)


# One problem of each answer type: the keys a recipe gives them change with anything but the problems that changes
# a plan's keys (teachers, sampling, levels, formats, modes, prompt texts and versions, a custom prompt).
_PROBES = [
    Problem(
        id=f"probe-{kind.value}",
        dataset="probe",
        split="train",
        question="?",
        answer=answer,
        answer_type=kind,
        choices=["a", "b"] if kind is AnswerType.choice else None,
    )
    for kind, answer in (
        (AnswerType.number, "1"),
        (AnswerType.expression, "x"),
        (AnswerType.choice, "A"),
        (AnswerType.boolean, "True"),
    )
]


def plan_stamp(recipe: Recipe, sources: list[LoadedSource], custom: CustomPrompt | None = None) -> str | None:
    """What the plan's keys are known by: the sources' stamps and the keys the recipe gives the probe problems;
    None where a source's state cannot be known (the keys are then planned from the rows)."""
    if not sources or any(source.stamp is None for source in sources):
        return None
    probes = [key for job in plan_jobs(recipe, [LoadedSource.of("probe", _PROBES)], custom) for key in job.keys]
    return stamp([source.stamp for source in sources], probes)


def answers_asked(recipe: Recipe, problems: int) -> int:
    """The answers a plan of `problems` asks: its keys, where no two sources hold the same problem."""
    return problems * len(recipe.teachers) * len(asked(recipe)) * recipe.samples_per_prompt


def planned_keys(
    recipe: Recipe,
    sources: list[LoadedSource],
    custom: CustomPrompt | None,
    cache: SourceCache | None,
    from_rows: bool = False,
) -> KeySet:
    """Every planned key; with `cache`, read from it when the sources and what makes keys are as before (a no-op
    resume of a million problems then reads no row) and the entry holds as many keys as the sources' problems ask
    for, else planned from the rows (always, with `from_rows`) and kept there, with what the sources' checking
    passes found, for the next run."""
    key = plan_stamp(recipe, sources, custom) if cache is not None else None
    expected = answers_asked(recipe, sum(source.count for source in sources))
    found = cache.read(PLAN, key) if cache is not None and key is not None and not from_rows else None
    planned = KeySet.of_sorted(found["digests"]) if found is not None and "digests" in found else None
    if planned is None or len(planned) != expected:
        planned = KeySet.of(k for job in plan_jobs(recipe, sources, custom) for k in job.keys)
        # Sources that hold the same problems plan fewer keys than they count: such a plan is never kept.
        if cache is not None and key is not None and len(planned) == expected:
            cache.write(PLAN, key, {"digests": planned.digests})
    if cache is not None:
        kept = {(PLAN, key), (ESTIMATE, estimate_stamp(key))} if key is not None else set()
        for source in sources:
            if source.stamp is not None and source.selection is not None:
                if cache.selection(source.stamp) is None:  # the checking pass ran: not read from the cache
                    cache.write(SOURCE, source.stamp, source.selection.arrays())
                kept.add((SOURCE, source.stamp))
        cache.keep_only(kept)
    return planned


def _trace_job(
    problem: Problem,
    teacher: TeacherSpec,
    index: int,
    recipe: Recipe,
    sampling: dict[str, Any],
    templates: dict[tuple[int, AnswerType, int | None], tuple[str, KeyTemplate]],
    level: int | None,
) -> Job:
    """A job on the teacher's own trace: the native arm's (`level` None: the final answer line alone, the trace as
    the CoT) or a condensed level's (that trace rewritten at `level`)."""
    mode, cot = (FormatMode.native, CoTFormat.cot) if level is None else (FormatMode.condensed, CoTFormat.cot)
    shape = (index, problem.answer_type, level)
    if shape not in templates:
        version = prompt_version(problem.answer_type, level or 0, cot, recipe.prompt_mode, mode)
        templates[shape] = version, KeyTemplate.make(teacher, recipe, level, cot, version, sampling, mode)
    version, template = templates[shape]
    keys = template.keys(problem, recipe.samples_per_prompt)
    return Job(problem, teacher, level, cot, mode, recipe.prompt_mode, version, keys)


@dataclass
class PlanSummary:
    problems: int
    teachers: int
    combinations: int
    samples: int
    answers: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None when any teacher's price is unknown
    unpriced_teachers: list[str]
    reasoning_tokens: int = 0  # of completion_tokens, the traces of reasoning teachers (ASSUMED_TRACE_TOKENS)
    tokens_by_teacher: dict[str, list[int]] = field(default_factory=dict)  # label: prompt, answer, trace


def reasoning_assumption() -> str:
    """The dry run's assumption about traces, in words."""
    efforts = ", ".join(f"{effort} {tokens}" for effort, tokens in ASSUMED_TRACE_TOKENS.items() if effort)
    return f"tokens per answer by reasoning_effort: {efforts}; default medium; at most max_tokens; billed as output"


def thinks(teacher: TeacherSpec) -> bool:
    """Whether the teacher writes a trace: a reasoning model family, a reasoning_effort, or thinking switched on in
    its chat template."""
    template = teacher.extra_body.get("chat_template_kwargs")
    switched_on = isinstance(template, dict) and bool(template.get("enable_thinking") or template.get("thinking"))
    return teacher.model_capabilities.reasoning or teacher.reasoning_effort is not None or switched_on


def assumed_trace_tokens(teacher: TeacherSpec, max_tokens: int) -> int:
    """The tokens one answer's trace is assumed to take (0 for a teacher that does not think)."""
    return min(ASSUMED_TRACE_TOKENS[teacher.reasoning_effort], max_tokens) if thinks(teacher) else 0


def summarise(
    recipe: Recipe, sources: list[LoadedSource], cache: SourceCache | None = None, custom: CustomPrompt | None = None
) -> PlanSummary:
    """Counts and an estimate of tokens and dollars. A prompt's length is its template's (measured once per answer
    type, level and format on a real prompt) plus its question's, so a million answers are summed in seconds; with
    `cache`, the token counts kept by keep_summary for these sources and this recipe are read, not the rows."""
    key = estimate_stamp(plan_stamp(recipe, sources, custom)) if cache is not None else None
    found = cache.read(ESTIMATE, key) if cache is not None and key is not None else None
    tallies = _kept_tallies(found, [t.label for t in recipe.teachers]) if found is not None else None
    if tallies is None:
        tallies = _token_tallies(recipe, sources)
    return _summary(recipe, sum(s.count for s in sources), tallies)


def _kept_tallies(found: dict[str, np.ndarray], labels: list[str]) -> dict[str, list[int]] | None:
    """The token counts keep_summary kept for these teachers; None where the entry is not of that shape."""
    teachers, tokens = found.get("teachers"), found.get("tokens")
    if teachers is None or tokens is None or teachers.tolist() != labels:
        return None
    if tokens.dtype.kind != "i" or tokens.shape != (len(labels), 3):
        return None
    return {label: [int(n) for n in row] for label, row in zip(labels, tokens.tolist(), strict=True)}


def keep_summary(cache: SourceCache, summary: PlanSummary, plan_key: str | None) -> None:
    """Keep a summary's token counts for the plan known by `plan_key`, once the build directory exists (a dry run
    leaves nothing behind) and unless they are kept already (a no-op resume writes nothing)."""
    key = estimate_stamp(plan_key)
    if key is not None and cache.folder.parent.is_dir():
        labels = list(summary.tokens_by_teacher)
        found = cache.read(ESTIMATE, key)
        if found is not None and _kept_tallies(found, labels) == summary.tokens_by_teacher:
            return
        tokens = np.array([summary.tokens_by_teacher[label] for label in labels], np.int64)
        cache.write(ESTIMATE, key, {"teachers": np.array(labels, str), "tokens": tokens})


def estimate_stamp(plan_key: str | None) -> str | None:
    """The estimate's entry: the plan's key and the figures the estimate assumes."""
    if plan_key is None:
        return None
    lengths = {fmt.value: spec.length for fmt, spec in FORMATS.items()}
    assumed = (_WORDS_PER_LEVEL, _FAMILY_LENGTH, _TOKENS_PER_WORD, _CHARS_PER_TOKEN, ASSUMED_TRACE_TOKENS, lengths)
    return stamp(plan_key, assumed)


def _token_tallies(recipe: Recipe, sources: list[LoadedSource]) -> dict[str, list[int]]:
    """Per teacher: estimated prompt, answer and trace tokens of the whole plan, one pass over the rows."""
    usage_by_teacher: dict[str, list[int]] = {t.label: [0, 0, 0] for t in recipe.teachers}  # prompt, answer, trace
    trace_tokens = {t.label: assumed_trace_tokens(t, recipe.sampling.max_tokens) for t in recipe.teachers}
    template_chars: dict[tuple[AnswerType, int | None, CoTFormat, bool], int] = {}
    rewrite = recipe.format_mode is FormatMode.rewrite
    for source in sources:
        for problem in source:
            question_chars = len(problem.student_prompt())
            for granularity, fmt, condensed in asked(recipe):
                shape = (problem.answer_type, granularity, fmt, condensed)
                if shape not in template_chars:
                    if granularity is None:
                        prompt = build_native_prompt(problem, recipe.prompt_mode)
                        extra = 0
                    elif condensed:
                        prompt = build_condense_prompt(problem, granularity, recipe.prompt_mode, REWRITE_PLACEHOLDER)
                        extra = round(max(trace_tokens.values()) * _CHARS_PER_TOKEN)  # the trace pasted in
                    elif rewrite and fmt is not CoTFormat.cot:
                        prompt = build_rewrite_prompt(
                            problem, granularity, fmt, recipe.prompt_mode, REWRITE_PLACEHOLDER
                        )
                        extra = _WORDS_PER_LEVEL[granularity] * 6  # the plain rationale pasted into the prompt
                    else:
                        prompt = build_prompt(problem, granularity, fmt, recipe.prompt_mode, recipe.guides)
                        extra = 0
                    template_chars[shape] = sum(len(m.content) for m in prompt.messages) - question_chars + extra
                prompt_tokens = round((template_chars[shape] + question_chars) / _CHARS_PER_TOKEN)
                level = 0 if granularity is None else granularity  # the native arm's reply: the answer line
                words = _WORDS_PER_LEVEL[level] * FORMATS[fmt].length * _FAMILY_LENGTH[problem.answer_type]
                for teacher in recipe.teachers:
                    tally = usage_by_teacher[teacher.label]
                    tally[0] += prompt_tokens
                    tally[1] += round(words * _TOKENS_PER_WORD) * recipe.samples_per_prompt
                    tally[2] += trace_tokens[teacher.label] * recipe.samples_per_prompt
    return usage_by_teacher


def _summary(recipe: Recipe, problems: int, usage_by_teacher: dict[str, list[int]]) -> PlanSummary:
    total_cost: float | None = 0.0
    unpriced = []
    for teacher in recipe.teachers:
        prompt_tokens, answer_tokens, reasoning_tokens = usage_by_teacher[teacher.label]
        usage = TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=answer_tokens + reasoning_tokens)
        cost = cost_usd(teacher, usage)
        if cost is None:
            unpriced.append(teacher.label)
        elif total_cost is not None:
            total_cost += cost
    return PlanSummary(
        problems=problems,
        teachers=len(recipe.teachers),
        combinations=len(asked(recipe)),
        samples=recipe.samples_per_prompt,
        answers=answers_asked(recipe, problems),
        prompt_tokens=sum(t[0] for t in usage_by_teacher.values()),
        completion_tokens=sum(t[1] + t[2] for t in usage_by_teacher.values()),
        cost_usd=None if unpriced and len(unpriced) == len(recipe.teachers) else total_cost,
        unpriced_teachers=unpriced,
        reasoning_tokens=sum(t[2] for t in usage_by_teacher.values()),
        tokens_by_teacher=usage_by_teacher,
    )
