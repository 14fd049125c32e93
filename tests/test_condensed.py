"""Condensed levels: a reasoning teacher's native trace rewritten at a level, as rewrite mode rewrites a plain CoT;
their subsets, dry-run counts, card and plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cotforge.recipes.prompts.templates import CONDENSE_SYSTEM, LEVEL_GUIDES
from cotforge.schemas import CoTRecord, Recipe, Rejection, RejectionReason
from cotforge.schemas.tables import read_parquet

from .helpers import scripted_recipe, write_problems
from .scripted_server import TRACE
from .test_build import all_rows, build


def test_condensed_levels_rewrite_the_native_trace(tmp_path: Path, scripted) -> None:
    from cotforge.recipes.identity import differences

    problems = write_problems(tmp_path / "p.jsonl", ["c1 answer=5 shape=reasoning_content", "c2 answer=5"])
    recipe = scripted_recipe(problems, scripted.url, native=True, condensed=[1, 3])
    report = build(recipe, tmp_path / "out")
    # Two problems x (level 2 + native + condensed 1 and 3). c2's teacher writes no trace: its native answer is
    # rejected, so there is nothing to condense and both condensed answers are rejections that say so.
    assert report.requested == report.accepted + sum(report.rejected.values()) + report.failed + report.pending
    assert (report.requested, report.accepted, report.failed, report.pending) == (8, 5, 0, 0)
    assert report.rejected == {RejectionReason.no_trace: 3}
    assert report.subsets == {
        "scripted-g2-cot": 2,
        "scripted-native-cot": 1,
        "scripted-condensed-g1-cot": 1,
        "scripted-condensed-g3-cot": 1,
    }
    out = tmp_path / "out" / "subsets"
    (condensed,) = read_parquet(out / "scripted-condensed-g3-cot.parquet", CoTRecord)
    (native,) = read_parquet(out / "scripted-native-cot.parquet", CoTRecord)
    assert (condensed.granularity, condensed.format_mode.value) == (3, "condensed")
    assert condensed.rationale.endswith("The answer is 5") and condensed.correct
    # The condensing teacher thought too (shape=reasoning_content): its trace is about rewriting, so not kept.
    assert condensed.reasoning is None and condensed.reasoning_tokens == len(TRACE.split())
    condense_chats = [e for e in scripted.answered() if "Reasoning trace to condense" in e.chat]
    assert len(condense_chats) == 2, "asked once per condensed level, only where a native trace exists"
    asked = condensed.messages_sent
    assert CONDENSE_SYSTEM.split(".")[0] in asked[0].content and LEVEL_GUIDES[3] in asked[0].content
    assert native.reasoning is not None and native.reasoning in asked[-1].content, "the trace is pasted in"
    assert asked[-1].content.rstrip().endswith(native.rationale), "with its answer line after it"
    rejected = {r.key: r for r in all_rows(tmp_path / "out") if isinstance(r, Rejection)}
    details = sorted(r.detail.split(" ")[0:2] == ["native", "answer"] for r in rejected.values())
    assert details == [False, True, True], "the condensed rejections name the rejected native answer"
    assert differences(scripted_recipe(problems, scripted.url, native=True), recipe) == ["condensed: null -> [1, 3]"]
    rerun = build(recipe, tmp_path / "out")
    assert rerun.last_run is not None and rerun.last_run.requests_sent == 0, "condensed keys are stable"


def test_condensed_needs_the_native_arm_and_a_level(tmp_path: Path) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=1"])
    with pytest.raises(ValidationError, match="condensed: condensed levels rewrite the native arm"):
        scripted_recipe(problems, "http://127.0.0.1:9/v1", condensed=[3])
    with pytest.raises(ValidationError, match="condensed"):
        scripted_recipe(problems, "http://127.0.0.1:9/v1", native=True, condensed=[0])
    with pytest.raises(ValidationError, match="format_mode"):
        scripted_recipe(problems, "http://127.0.0.1:9/v1", format_mode="condensed")


def test_dry_run_counts_condensed_levels() -> None:
    from cotforge.builders.plan import summarise
    from cotforge.recipes.sources import LoadedSource
    from cotforge.schemas import Problem

    problems = [Problem(id="p", dataset="d", split="train", question="q", answer="1", answer_type="number")]
    base = {"sources": ["svamp"], "teachers": [{"model": "o3"}], "granularities": [3], "native": True}
    native = summarise(Recipe.model_validate(base), [LoadedSource(name="d", problems=problems)])
    both = summarise(Recipe.model_validate({**base, "condensed": [2, 4]}), [LoadedSource(name="d", problems=problems)])
    assert (native.answers, both.answers, both.combinations) == (2, 4, 4)
    # Each condensed prompt carries a whole trace, so the estimate grows by more than two prompts' templates.
    assert both.prompt_tokens - native.prompt_tokens > 2 * 1000


def test_card_and_plot_cover_native_and_condensed_arms(tmp_path: Path, scripted) -> None:
    from cotforge.corpus import BuildDir
    from cotforge.dataset_cards import subset_stats
    from cotforge.dataset_cards.card import render_card
    from cotforge.dataset_cards.plot import length_by_level_png

    problems = write_problems(tmp_path / "p.jsonl", ["c1 answer=5 shape=reasoning_content"])
    build(scripted_recipe(problems, scripted.url, native=True, condensed=[3]), tmp_path / "out")
    stats = [subset_stats(name, rows) for name, rows in BuildDir(tmp_path / "out").read_subsets().items()]
    modes = {s.subset: s.format_mode for s in stats}
    assert modes == {
        "scripted-g2-cot": "direct",
        "scripted-native-cot": "native",
        "scripted-condensed-g3-cot": "condensed",
    }
    recipe = {"granularities": [2], "native": True, "condensed": [3]}
    card = render_card("me/corpus", stats, has_plot=True, recipe=recipe)
    assert "- granularity levels: [2]; formats: ['cot'] (direct); the native arm; condensed levels [3]" in card
    assert "`scripted-condensed-g3-cot`" in card and "`scripted-native-cot`" in card
    assert "`<teacher>-condensed-g<level>-cot` subsets hold those traces rewritten" in card
    plain = render_card("me/corpus", [s for s in stats if s.format_mode == "direct"])
    assert "condensed" not in plain and "native-cot" not in plain, "a corpus without the arms is described as before"
    assert length_by_level_png([s for s in stats if s.format_mode == "native"]) is not None, "the native line alone"
    with_arms, without = length_by_level_png(stats), length_by_level_png([s for s in stats if s.granularity])
    assert with_arms is not None and with_arms != without, "the native trace's line is drawn"
