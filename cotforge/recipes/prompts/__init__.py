"""Chat prompts for every granularity level, format and prompt mode, each with a version hash of its text."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

from cotforge.recipes.formats import FORMATS
from cotforge.recipes.prompts import templates as t
from cotforge.schemas.guides import CustomGuides
from cotforge.schemas.problem import AnswerType, Problem
from cotforge.schemas.recipe import CoTFormat, FormatMode, PromptMode
from cotforge.schemas.record import ChatMessage

_FAMILY_DEMOS = {"math": t.MATH_DEMO, "expression": t.MATH_DEMO, "choice": t.CHOICE_DEMO, "boolean": t.BOOLEAN_DEMO}
_FAMILIES = {
    AnswerType.number: "math",
    AnswerType.expression: "expression",
    AnswerType.choice: "choice",
    AnswerType.boolean: "boolean",
}


@dataclass(frozen=True)
class Prompt:
    messages: list[ChatMessage]
    prompt_version: str
    format_mode: FormatMode


def _with_answer(body: str, answer: str) -> str:
    answer_line = t.ANSWER_LINE.format(answer=answer)
    return f"{body}\n{answer_line}" if body else answer_line


def _user_turn(question: str, answer: str, mode: PromptMode) -> str:
    if mode is PromptMode.gold_hinted:
        return f"{question}\n\n{t.GOLD_HINT.format(answer=answer)}"
    return question


def _direct_messages(
    question: str,
    answer: str,
    family: str,
    granularity: int,
    fmt: CoTFormat,
    mode: PromptMode,
    guides: CustomGuides | None = None,
) -> list[ChatMessage]:
    """The system turn, the 1-shot pair at the level and the question; `guides`: the user's own level guide,
    demonstration and answer form in place of the built-in ones."""
    if guides is None:
        demo, guide, answer_form = _FAMILY_DEMOS[family], t.LEVEL_GUIDES[granularity], t.ANSWER_FORMS[family]
    else:
        own = guides.demonstration
        demo = t.Demonstration(own.question, own.answer, own.by_level)
        guide, answer_form = guides.levels[granularity], guides.answer_form or t.ANSWER_FORMS[family]
    system = [t.SYSTEM.format(answer_form=answer_form), guide]
    if granularity > 0:
        system.append(FORMATS[fmt].guide)
    if fmt is not CoTFormat.cot and granularity > 0:
        # The 1-shot pair below shows the level in plain form; this shows the shape of the format.
        example = _with_answer(_example(fmt), t.MATH_DEMO.answer)
        system.append(f"An example of this format, for another question:\n{t.MATH_DEMO.question}\n{example}")
    demo_body = demo.by_level.get(granularity, "")
    return [
        ChatMessage(role="system", content="\n\n".join(system)),
        ChatMessage(role="user", content=_user_turn(demo.question, demo.answer, mode)),
        ChatMessage(role="assistant", content=_with_answer(demo_body, demo.answer)),
        ChatMessage(role="user", content=_user_turn(question, answer, mode)),
    ]


def level_guide(answer_type: AnswerType, granularity: int, guides: CustomGuides | None = None) -> tuple[str, str]:
    """(the level's guide, its 1-shot demonstration as question and rationale): what the prompts of that level show
    the teacher, for a judge to hold a rationale against."""
    _check(granularity, CoTFormat.cot)
    family = _FAMILIES[answer_type]
    if guides is None:
        demo, guide = _FAMILY_DEMOS[family], t.LEVEL_GUIDES[granularity]
    else:
        own = guides.demonstration
        demo, guide = t.Demonstration(own.question, own.answer, own.by_level), guides.levels[granularity]
    rationale = _with_answer(demo.by_level.get(granularity, ""), demo.answer)
    return guide, f"{demo.question}\n{rationale}"


def _native_messages(question: str, answer: str, family: str, mode: PromptMode) -> list[ChatMessage]:
    """The answer-only chat (level 0), its level guide replaced by the native one: think, then the answer line."""
    system, *turns = _direct_messages(question, answer, family, 0, CoTFormat.cot, mode)
    content = system.content.replace(t.LEVEL_GUIDES[0], t.NATIVE_GUIDE)
    return [ChatMessage(role="system", content=content), *turns]


def _rewrite_messages(question: str, plain: str, fmt: CoTFormat) -> list[ChatMessage]:
    demo_plain = _with_answer(t.MATH_DEMO.by_level[3], t.MATH_DEMO.answer)
    demo_rewritten = _with_answer(_example(fmt), t.MATH_DEMO.answer)
    ask = "Question: {q}\n\nSolution to rewrite:\n{s}"
    return [
        ChatMessage(role="system", content=t.REWRITE_SYSTEM.format(format_guide=FORMATS[fmt].guide)),
        ChatMessage(role="user", content=ask.format(q=t.MATH_DEMO.question, s=demo_plain)),
        ChatMessage(role="assistant", content=demo_rewritten),
        ChatMessage(role="user", content=ask.format(q=question, s=plain)),
    ]


def _condense_messages(question: str, trace: str, family: str, granularity: int) -> list[ChatMessage]:
    """The chat that rewrites a native trace at `granularity`: the level's guide, and MATH_DEMO's trace condensed
    into its rationale at that level as the demonstration."""
    system = t.CONDENSE_SYSTEM.format(answer_form=t.ANSWER_FORMS[family])
    ask = "Question: {q}\n\nReasoning trace to condense:\n{s}"
    demo_trace = _with_answer(t.MATH_DEMO_TRACE, t.MATH_DEMO.answer)
    return [
        ChatMessage(role="system", content=f"{system}\n\n{t.LEVEL_GUIDES[granularity]}"),
        ChatMessage(role="user", content=ask.format(q=t.MATH_DEMO.question, s=demo_trace)),
        ChatMessage(role="assistant", content=_with_answer(t.MATH_DEMO.by_level[granularity], t.MATH_DEMO.answer)),
        ChatMessage(role="user", content=ask.format(q=question, s=trace)),
    ]


def _example(fmt: CoTFormat) -> str:
    example = FORMATS[fmt].example
    assert example is not None, "only plain cot has no example of its own, and it never needs one"
    return example


def _version(messages: list[ChatMessage], *labels: str) -> str:
    payload = json.dumps([labels, [m.model_dump() for m in messages]], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _check(granularity: int, fmt: CoTFormat) -> None:
    if granularity not in t.LEVEL_GUIDES:
        raise ValueError(f"granularity must be 0..6, got {granularity}")
    if granularity == 0 and fmt is not CoTFormat.cot:
        raise ValueError("granularity 0 (answer only) has no rationale to put into the format " + fmt.value)


def _check_condensed(granularity: int, fmt: CoTFormat) -> None:
    if granularity == 0 or fmt is not CoTFormat.cot:
        raise ValueError("a condensed level is 1..6, in plain cot")


@functools.cache  # templates are code: a version changes only with a new release of them
def prompt_version(
    answer_type: AnswerType,
    granularity: int,
    fmt: CoTFormat,
    mode: PromptMode,
    format_mode: FormatMode = FormatMode.direct,
    guides: CustomGuides | None = None,
) -> str:
    """The version of a template: the hash of its full text with placeholders where the problem goes (the user's
    guides, where given, are part of that text)."""
    _check(granularity, fmt)
    family = _FAMILIES[answer_type]
    if format_mode is FormatMode.rewrite and fmt is not CoTFormat.cot:
        messages = _rewrite_messages("{question}", "{plain_rationale}", fmt)
    elif format_mode is FormatMode.native:
        if (granularity, fmt) != (0, CoTFormat.cot):
            raise ValueError("the native arm is asked at no level, in plain cot: give granularity 0 and cot")
        messages = _native_messages("{question}", "{answer}", family, mode)
    elif format_mode is FormatMode.condensed:
        _check_condensed(granularity, fmt)
        messages = _condense_messages("{question}", "{native_trace}", family, granularity)
    else:
        messages = _direct_messages("{question}", "{answer}", family, granularity, fmt, mode, guides)
        format_mode = FormatMode.direct
    return _version(messages, family, str(granularity), fmt.value, mode.value, format_mode.value)


def build_prompt(
    problem: Problem, granularity: int, fmt: CoTFormat, mode: PromptMode, guides: CustomGuides | None = None
) -> Prompt:
    """The chat that asks a teacher to solve `problem` at `granularity` in `fmt`, blind or gold-hinted, with the
    built-in guides or the user's `guides`."""
    _check(granularity, fmt)
    family = _FAMILIES[problem.answer_type]
    messages = _direct_messages(problem.student_prompt(), problem.answer, family, granularity, fmt, mode, guides)
    version = prompt_version(problem.answer_type, granularity, fmt, mode, guides=guides)
    return Prompt(messages, version, FormatMode.direct)


def build_native_prompt(problem: Problem, mode: PromptMode) -> Prompt:
    """The chat that asks a reasoning teacher for the final answer line alone: its own trace is the CoT."""
    family = _FAMILIES[problem.answer_type]
    messages = _native_messages(problem.student_prompt(), problem.answer, family, mode)
    version = prompt_version(problem.answer_type, 0, CoTFormat.cot, mode, FormatMode.native)
    return Prompt(messages, version, FormatMode.native)


def build_condense_prompt(problem: Problem, granularity: int, mode: PromptMode, native_trace: str) -> Prompt:
    """The chat that asks a teacher to rewrite a native trace (with its answer line) at `granularity`."""
    _check(granularity, CoTFormat.cot)
    _check_condensed(granularity, CoTFormat.cot)
    family = _FAMILIES[problem.answer_type]
    messages = _condense_messages(problem.student_prompt(), native_trace, family, granularity)
    version = prompt_version(problem.answer_type, granularity, CoTFormat.cot, mode, FormatMode.condensed)
    return Prompt(messages, version, FormatMode.condensed)


def build_rewrite_prompt(
    problem: Problem, granularity: int, fmt: CoTFormat, mode: PromptMode, plain_rationale: str
) -> Prompt:
    """The chat that asks a teacher to rewrite the plain CoT of the same level into `fmt` (the paper's method)."""
    _check(granularity, fmt)
    if fmt is CoTFormat.cot:
        raise ValueError("rewrite mode turns a plain CoT into another format; 'cot' needs no rewrite")
    messages = _rewrite_messages(problem.student_prompt(), plain_rationale, fmt)
    version = prompt_version(problem.answer_type, granularity, fmt, mode, FormatMode.rewrite)
    return Prompt(messages, version, FormatMode.rewrite)


__all__ = [
    "Prompt",
    "build_condense_prompt",
    "build_native_prompt",
    "build_prompt",
    "build_rewrite_prompt",
    "level_guide",
    "prompt_version",
]
