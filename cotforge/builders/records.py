"""Turn one teacher answer into a CoTRecord, or a Rejection that says why not."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from cotforge.answers import AnswerSource, ParsedAnswer, answers_match, extract_answer
from cotforge.answers.reasoning import THINK_CLOSE
from cotforge.builders.parse import canonical_rationale, clean_rationale, split_steps
from cotforge.builders.plan import Job
from cotforge.builders.pricing import cost_usd
from cotforge.builders.teachers.base import Answer
from cotforge.safety.text import storable, unstorable
from cotforge.schemas.recipe import FormatMode, Recipe, TeacherSpec
from cotforge.schemas.record import CoTRecord, Rejection, RejectionReason, TokenUsage, problem_fields


def origin_fields(job: Job, key: str, recipe: Recipe) -> dict[str, Any]:
    return {
        "key": key,
        "problem_id": job.problem.id,
        "dataset": job.problem.dataset,
        "teacher": job.teacher.label,
        "teacher_model": job.teacher.model,
        "granularity": job.granularity,
        "format": job.fmt,
        "format_mode": job.format_mode,
        "prompt_mode": recipe.prompt_mode,
        "prompt_version": job.prompt_version,
        "sample_index": job.keys.index(key),
        "sampling": recipe.sampling,
    }


def failure_row(job: Job, key: str, recipe: Recipe, detail: str) -> Rejection:
    return Rejection(**origin_fields(job, key, recipe), reason=RejectionReason.api_error, detail=storable(detail))


def truncation(answer: Answer, teacher: TeacherSpec, max_tokens: int) -> str | None:
    """Why an answer was cut by the token budget, or None when it was not. A trace that never closed is cut
    whatever the finish reason (Ray reports none; a server may stop on its own), and says so."""
    budget = f"{teacher.model_capabilities.token_limit}={max_tokens}"
    still_reasoning = answer.reasoning_open or (answer.reasoning is not None and not (answer.text or "").strip())
    if answer.finish_reason == "length":
        return f"hit {budget} while still reasoning (no answer after the trace)" if still_reasoning else f"hit {budget}"
    if answer.reasoning_open:
        return f"the reasoning trace never closed (no {THINK_CLOSE}); raise {budget}"
    return None


def _read_answer(job: Job, text: str | BaseModel) -> ParsedAnswer | None:
    """The final answer: by the user's parse function when the build has one (given the validated object where
    the answer has a format), else an object's `answer` field, else by the built-in reader."""
    problem = job.problem
    if job.custom is not None and job.custom.parse is not None:
        answer, source = job.custom.parse(problem, text), AnswerSource.custom
    elif isinstance(text, BaseModel):
        answer, source = getattr(text, "answer", None), AnswerSource.schema
    else:
        return extract_answer(text, problem.answer_type, problem.choices)
    return None if answer is None or not str(answer).strip() else ParsedAnswer(str(answer).strip(), source)


def _object_rationale(found: BaseModel) -> str:
    """The CoT an answer object holds: its `rationale` text or its `steps`, one a line; empty where it has neither."""
    rationale, steps = getattr(found, "rationale", None), getattr(found, "steps", None)
    if isinstance(rationale, str):
        return clean_rationale(rationale)
    if isinstance(steps, list):
        return "\n".join(clean_rationale(str(step)) for step in steps)
    return ""


def answer_to_row(
    job: Job, key: str, recipe: Recipe, answer: Answer, messages: list[dict[str, str]]
) -> CoTRecord | Rejection:
    origin = origin_fields(job, key, recipe) | {
        "finish_reason": None if answer.finish_reason is None else storable(answer.finish_reason),
        "usage": answer.usage or TokenUsage(),
        "reasoning_tokens": answer.reasoning_tokens,
        "cost_usd": None if answer.usage is None else cost_usd(job.teacher, answer.usage),  # unknown usage
        "latency_s": answer.latency_s,
    }
    limit = recipe.max_answer_chars

    def reject(reason: RejectionReason, detail: str) -> Rejection:
        raw = None if answer.text is None else storable(answer.text[:limit])
        trace = None if answer.reasoning is None else storable(answer.reasoning[:limit])
        return Rejection(**origin, reason=reason, detail=detail, raw_response=raw, raw_reasoning=trace)

    if answer.malformed is not None:
        return reject(RejectionReason.malformed, answer.malformed)
    # Teacher text is not trusted: what cannot be stored, or is too big to be an answer, is a rejection.
    for part, text in (("answer", answer.text), ("reasoning trace", answer.reasoning), ("refusal", answer.refusal)):
        if text is not None and len(text) > limit:
            return reject(
                RejectionReason.too_long, f"the {part}: {len(text):,} characters, over max_answer_chars={limit:,}"
            )
    why = unstorable((answer.text or "") + (answer.reasoning or "") + (answer.refusal or ""))
    if why is not None:
        return reject(RejectionReason.unstorable_text, why)
    if answer.refusal or answer.finish_reason == "content_filter":
        return reject(RejectionReason.refusal, answer.refusal or "stopped by the content filter")
    cut = truncation(answer, job.teacher, recipe.sampling.max_tokens)
    if cut is not None:
        return reject(RejectionReason.truncated, cut)
    text = clean_rationale(answer.text or "")
    if not text:
        return reject(RejectionReason.empty, "the answer has no text")
    if job.format_mode is FormatMode.native and not answer.reasoning:
        return reject(RejectionReason.no_trace, "native arm: the teacher wrote no reasoning trace to be the CoT")
    problem = job.problem
    found = None if job.answer_format is None else job.answer_format.parse(text)
    if isinstance(found, str):
        return reject(RejectionReason.schema_mismatch, found)
    parsed = _read_answer(job, text if found is None else found)
    if parsed is None or parsed.source is AnswerSource.fallback:
        return reject(RejectionReason.unparseable, f"no final answer line of type {problem.answer_type.value}")
    correct = answers_match(parsed.answer, problem.answer, problem.answer_type, problem.choices)
    if recipe.keep == "correct" and not correct:
        return reject(RejectionReason.wrong_answer, f"answered {parsed.answer!r}, gold is {problem.answer!r}")
    rationale = canonical_rationale(text if found is None else _object_rationale(found), parsed)
    # A condensed level's CoT is its rationale; the condensing teacher's own trace is about rewriting, not about
    # the problem, so it is not kept as the record's trace (a student trained with `keep` would learn it).
    trace = None if job.format_mode is FormatMode.condensed else answer.reasoning
    try:
        return CoTRecord(
            **origin,
            **problem_fields(problem),
            messages_sent=messages,
            rationale=rationale,
            reasoning=trace,
            steps=split_steps(rationale, job.fmt),
            predicted_answer=parsed.answer,
            answer_source=parsed.source,
            correct=correct,
            answer_object=None if found is None else found.model_dump_json(),
        )
    except ValidationError as error:
        return reject(RejectionReason.invalid_record, str(error)[:500])
