from __future__ import annotations

import pytest

from cotforge.recipes.prompts import build_prompt, build_rewrite_prompt, prompt_version
from cotforge.recipes.prompts import templates as t
from cotforge.recipes.sources import load_problems
from cotforge.schemas import AnswerType, CoTFormat, FormatMode, PromptMode, SourceSpec

SVAMP = load_problems(SourceSpec(dataset="svamp"), sample=True).problems[0]
OBQA = load_problems(SourceSpec(dataset="obqa"), sample=True).problems[0]


def test_every_template_asks_for_the_canonical_answer_line() -> None:
    for problem in (SVAMP, OBQA):
        for level in range(7):
            for fmt in CoTFormat if level else [CoTFormat.cot]:
                for mode in PromptMode:
                    prompt = build_prompt(problem, level, fmt, mode)
                    assert "'The answer is X'" in prompt.messages[0].content
                    assert prompt.messages[2].content.rstrip().splitlines()[-1].startswith("The answer is ")
                    assert prompt.messages[-1].role == "user"


def test_versions_differ_by_level_format_and_mode() -> None:
    versions = {
        prompt_version(AnswerType.number, level, fmt, mode, fm)
        for level in range(1, 7)
        for fmt in CoTFormat
        for mode in (PromptMode.blind, PromptMode.gold_hinted)
        for fm in (FormatMode.direct, FormatMode.rewrite)
        if not (fm is FormatMode.rewrite and fmt is CoTFormat.cot)
    }
    assert len(versions) == 6 * (4 + 3) * 2
    native = prompt_version(AnswerType.number, 0, CoTFormat.cot, PromptMode.blind, FormatMode.native)
    assert native not in versions | {prompt_version(AnswerType.number, 0, CoTFormat.cot, PromptMode.blind)}
    assert prompt_version(AnswerType.number, 3, CoTFormat.cot, PromptMode.blind) != prompt_version(
        AnswerType.choice, 3, CoTFormat.cot, PromptMode.blind
    )


def test_version_is_stable_and_follows_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    before = build_prompt(SVAMP, 4, CoTFormat.cot, PromptMode.blind).prompt_version
    assert build_prompt(SVAMP, 4, CoTFormat.cot, PromptMode.blind).prompt_version == before
    assert build_prompt(OBQA.model_copy(), 4, CoTFormat.cot, PromptMode.blind).prompt_version != before
    monkeypatch.setitem(t.LEVEL_GUIDES, 4, t.LEVEL_GUIDES[4] + " Be brief.")
    prompt_version.cache_clear()
    assert build_prompt(SVAMP, 4, CoTFormat.cot, PromptMode.blind).prompt_version != before
    monkeypatch.undo()
    prompt_version.cache_clear()
    # The problem itself is not part of the version: it is the template's.
    other = load_problems(SourceSpec(dataset="svamp"), sample=True).problems[1]
    assert (
        build_prompt(other, 4, CoTFormat.cot, PromptMode.blind).prompt_version
        == build_prompt(SVAMP, 4, CoTFormat.cot, PromptMode.blind).prompt_version
    )


def test_gold_hint_only_in_gold_mode() -> None:
    blind = build_prompt(SVAMP, 3, CoTFormat.cot, PromptMode.blind).messages[-1].content
    hinted = build_prompt(SVAMP, 3, CoTFormat.cot, PromptMode.gold_hinted).messages[-1].content
    assert blind == SVAMP.question
    assert hinted.startswith(SVAMP.question) and "The correct final answer is 145" in hinted


def test_demonstrations_grow_with_the_level() -> None:
    for demo in (t.MATH_DEMO, t.CHOICE_DEMO, t.BOOLEAN_DEMO):
        words = [len(demo.by_level[level].split()) for level in range(1, 7)]
        assert words == sorted(words) and len(set(words)) == 6, words
        assert words[-1] >= 2.5 * words[0]


def test_answer_only_level_has_no_reasoning() -> None:
    prompt = build_prompt(SVAMP, 0, CoTFormat.cot, PromptMode.blind)
    assert prompt.messages[2].content == "The answer is 513"
    with pytest.raises(ValueError, match="answer only"):
        build_prompt(SVAMP, 0, CoTFormat.symbolic, PromptMode.blind)


def test_choice_question_shows_choices() -> None:
    content = build_prompt(OBQA, 2, CoTFormat.cot, PromptMode.blind).messages[-1].content
    assert (
        "Answer choices: A:" in content
        and "letter" in build_prompt(OBQA, 2, CoTFormat.cot, PromptMode.blind).messages[0].content
    )


def test_rewrite_prompt_carries_the_plain_cot() -> None:
    plain = "Divide 290 by 2: 290 / 2 = 145.\nThe answer is 145"
    prompt = build_rewrite_prompt(SVAMP, 3, CoTFormat.subquestions, PromptMode.gold_hinted, plain)
    assert prompt.format_mode is FormatMode.rewrite
    assert plain in prompt.messages[-1].content
    assert "sub-question" in prompt.messages[0].content
    assert prompt.prompt_version == prompt_version(
        AnswerType.number, 3, CoTFormat.subquestions, PromptMode.gold_hinted, FormatMode.rewrite
    )
    with pytest.raises(ValueError, match="needs no rewrite"):
        build_rewrite_prompt(SVAMP, 3, CoTFormat.cot, PromptMode.blind, plain)


def test_every_format_is_declared_once_with_all_it_needs() -> None:
    from cotforge.recipes.formats import FORMATS
    from cotforge.schemas.recipe import CoTFormat

    assert list(FORMATS) == list(CoTFormat), "a new CoTFormat needs its FormatSpec"
    for fmt, spec in FORMATS.items():
        assert spec.guide.startswith("Format:") and spec.card.startswith(f"`{fmt.value}`") and spec.length > 0
        assert (spec.example is None) == (fmt is CoTFormat.cot), "every format but plain cot shows its example"
