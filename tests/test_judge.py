"""The judge: typed verdicts from a scripted judge (valid, malformed, out of range), resume without paying twice, the
level rubric's prompt, the judge section of a recipe, `cotforge judge` and `export --min-judge`."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cotforge.builders.build import run_build
from cotforge.cli import app
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.dataset_cards.card import render_card
from cotforge.dataset_cards.stats import SubsetStats
from cotforge.judging import BUILTIN, Rubric, judge_build, judge_spec
from cotforge.recipes import apply_overrides, load_recipe
from cotforge.recipes.identity import recipe_digest
from cotforge.recipes.loader import RecipeError
from cotforge.recipes.prompts import templates
from cotforge.recipes.sources import load_sources
from cotforge.schemas.guides import CustomGuides
from cotforge.schemas.judge import BUILTIN_RUBRICS
from cotforge.schemas.recipe import JudgeSpec

from .helpers import made_record, scripted_recipe, write_problems

VERDICTS = ("4", "9", "notjson", "noreason", "2")


def _built(tmp_path: Path, url: str, verdicts: tuple[str, ...] = VERDICTS) -> Path:
    """A scripted build whose questions tell the scripted judge which verdict to give."""
    questions = [f"Q{i} answer=5 verdict={verdict}" for i, verdict in enumerate(verdicts)]
    recipe = scripted_recipe(write_problems(tmp_path / "p.jsonl", questions), url)
    out = tmp_path / "out"
    run_build(recipe, load_sources(recipe), out)
    return out


def _spec(url: str, **changes: object) -> JudgeSpec:
    teacher = {"model": "judge", "base_url": url, "retry_backoff_s": 0.01, "max_retries": 0}
    return JudgeSpec.model_validate({"teacher": teacher, "rubrics": ["faithful"], **changes})


def _judged(scripted) -> list:
    return [e for e in scripted.answered() if "Solution to grade" in e.chat]


def test_valid_malformed_and_out_of_range_verdicts_are_each_kept_typed(tmp_path: Path, scripted) -> None:
    out = _built(tmp_path, scripted.url)
    report = judge_build(out, _spec(scripted.url))
    assert (report.asked, report.scored, report.rejected, report.failed) == (5, 2, 3, 0)
    scores = pl.read_parquet(out / "judge_scores.parquet").sort("score")
    assert scores["score"].to_list() == [2, 4] and set(scores["rubric"]) == {"faithful"}
    rejections = pl.read_parquet(out / "judge_rejections.parquet").sort("why")
    assert rejections["why"].to_list() == [
        "not a JSON object (Invalid JSON: expected value at line 1 column 1)",
        "reason: Field required",
        "score: Input should be less than or equal to 5",
    ]
    assert all(raw for raw in rejections["raw_response"].to_list())  # the text kept, not None-filled
    keys = {r.key for r in BuildDir(out).read_records()}
    assert set(scores["key"]) | set(rejections["key"]) == keys  # every record judged, by its own key
    sent = _judged(scripted)[0].params["response_format"]
    assert sent["type"] == "json_schema"
    assert {"minimum": 1, "maximum": 5}.items() <= sent["json_schema"]["schema"]["properties"]["score"].items()
    stats = json.loads((out / "cotforge_stats.json").read_text())
    (entry,) = stats.values()
    assert entry["judge"] == {"faithful": {"mean": 3.0, "judged": 2, "rejected": 3}}
    assert entry["rows"] == 5  # the build's own statistics kept beside the means
    card = render_card("me/corpus", [SubsetStats.model_validate(value) for value in stats.values()])
    assert "| subset | faithful |" in card and "| 3.00 (2, 3) |" in card
    entry.pop("judge")
    assert "LLM judge" not in render_card("me/corpus", [SubsetStats.model_validate(entry)])


def test_the_schema_goes_where_the_server_takes_it(tmp_path: Path, scripted) -> None:
    out = _built(tmp_path, scripted.url, ("4",))
    judge_build(out, _spec(scripted.url, structured_output="json_object"))
    assert _judged(scripted)[-1].params["response_format"]["type"] == "json_object"
    judge_build(out, _spec(scripted.url, structured_output="prompt", rubrics=["leak"]))
    last = _judged(scripted)[-1]
    assert "response_format" not in last.params and '"required":["score","reason"]' in last.chat.replace("\\", "")


def test_a_resumed_judge_pays_for_nothing_twice(tmp_path: Path, scripted) -> None:
    out = _built(tmp_path, scripted.url, ("4", "3 fault=500", "notjson"))
    first = judge_build(out, _spec(scripted.url))
    assert (first.asked, first.failed) == (2, 1) and not first.complete
    paid = len(_judged(scripted))
    second = judge_build(out, _spec(scripted.url))  # the failed one is asked again (the server now answers it)
    assert (second.asked, second.reused, second.failed, second.scored, second.rejected) == (1, 2, 0, 2, 1)
    assert len(_judged(scripted)) == paid + 1
    third = judge_build(out, _spec(scripted.url))
    assert (third.asked, third.reused) == (0, 3) and len(_judged(scripted)) == paid + 1
    # A new version of a rubric is a new question: asked again, and what the files show follows it.
    renamed = Rubric("faithful", "2", BUILTIN["faithful"].instruction)
    assert judge_build(out, _spec(scripted.url), [renamed]).asked == 3
    versions = pl.read_parquet(out / "judge_scores.parquet")["rubric_version"].unique().to_list()
    assert versions == ["2"]


def test_the_level_rubric_shows_the_judge_that_levels_guide_and_demonstration() -> None:
    level = BUILTIN["level"]
    for granularity in range(1, 7):
        record = made_record("2+3", f"k{granularity}", "5", "2+3=5\nThe answer is 5", level=granularity)
        prompt = "\n".join(m["content"] for m in level.messages(record))
        assert templates.LEVEL_GUIDES[granularity] in prompt
        assert templates.MATH_DEMO.by_level[granularity] in prompt
        others = [g for g in range(1, 7) if g != granularity]
        assert not any(templates.LEVEL_GUIDES[g] in prompt for g in others)
    record = made_record("2+3", "k", "5", "2+3=5\nThe answer is 5", level=2)
    assert templates.LEVEL_GUIDES[2] not in "\n".join(m["content"] for m in BUILTIN["faithful"].messages(record))
    own = CustomGuides.model_validate(
        {
            "levels": {2: "Two lines of code, no comments."},
            "demonstration": {
                "question": "Sum a list.",
                "answer": "sum",
                "by_level": {2: "def f(x):\n    return sum(x)"},
            },
        }
    )
    prompt = "\n".join(m["content"] for m in level.messages(record, own))
    assert "Two lines of code, no comments." in prompt and "return sum(x)" in prompt
    assert templates.LEVEL_GUIDES[2] not in prompt


def test_the_builtin_rubrics_are_the_ones_recipes_may_name() -> None:
    assert tuple(BUILTIN) == BUILTIN_RUBRICS


def test_a_judge_section_leaves_the_recipe_identity_and_refuses_unknown_fields() -> None:
    recipe = load_recipe("demo")
    judged = apply_overrides(
        recipe,
        {
            "judge": {
                "teacher": {"model": "gpt-4o-mini"},
                "rubrics": ["faithful", "level", {"name": "tone", "instruction": "Plain words.", "max_score": 3}],
            }
        },
    )
    assert recipe_digest(judged) == recipe_digest(recipe)
    assert judged.judge is not None and judged.judge.teacher.model == "gpt-4o-mini"
    for bad, says in (
        ({"teacher": "gpt-4o-mini", "rubrics": ["faithful"], "temperature": 0}, "judge.temperature: Extra inputs"),
        ({"teacher": "gpt-4o-mini", "rubrics": ["faithfull"]}, "unknown rubric faithfull"),
        ({"teacher": "gpt-4o-mini", "rubrics": [{"name": "x", "instruction": "y", "min_score": 5}]}, "min_score 5"),
    ):
        with pytest.raises(RecipeError, match=says):
            apply_overrides(recipe, {"judge": bad})


def test_judge_spec_from_the_recipe_and_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="give the judge's model"):
        judge_spec(tmp_path, None)
    spec = judge_spec(tmp_path, {"teacher": "gpt-4o-mini", "rubrics": ["leak"]}, None, {"base_url": "http://h:1/v1"})
    assert spec.teacher.model == "gpt-4o-mini" and spec.teacher.endpoint == "http://h:1/v1"
    assert judge_spec(tmp_path, spec, "vllm:Qwen/Qwen2.5-7B-Instruct", rubrics=None).teacher.backend == "vllm"


def test_the_judge_command_and_export_min_judge(tmp_path: Path, scripted) -> None:
    out = _built(tmp_path, scripted.url)
    runner = CliRunner()
    result = runner.invoke(app, ["judge", str(out)])
    assert result.exit_code == 2 and "give the judge's model (--model)" in " ".join(result.output.split())
    export = ["export", str(out), "-f", "trl-messages", "-o", str(tmp_path / "x"), "--min-judge", "faithful:4"]
    result = runner.invoke(app, export)
    assert result.exit_code == 2 and "run `cotforge judge" in " ".join(result.output.split())
    judge = ["judge", str(out), "--model", "judge", "--base-url", scripted.url, "--rubric", "faithful,leak"]
    result = runner.invoke(app, judge)
    assert result.exit_code == 0, result.output
    assert "10 verdicts asked" in result.output and "verdict rejected" in result.output
    result = runner.invoke(app, export)
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "x").glob("*.jsonl")
    assert [json.loads(line)["messages"][0]["content"] for line in written.read_text().splitlines()] == [
        "Q0 answer=5 verdict=4"
    ]
    from cotforge.quality.filters import QualityFilter
    from cotforge.train.config import TrainConfig
    from cotforge.train.data import load_pairs

    assert len(load_pairs(str(out), quality=QualityFilter(min_judge=(("faithful", 4),)))) == 1
    assert (
        len(
            load_pairs(
                str(out),
                quality=TrainConfig(model="m", dataset=str(out), min_judge=["faithful:2"]).data.quality_filter(),
            )
        )
        == 2
    )
    with pytest.raises(ValueError, match="give a rubric and a whole score"):
        TrainConfig(model="m", dataset=str(out), min_judge=["faithful>4"]).data.quality_filter()
    for flag, says in (("faithful", "give a rubric and a whole score"), ("level:4", "has no level scores")):
        bad = [*export[:-1], flag]
        result = runner.invoke(app, bad)
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output


@pytest.mark.integration
def test_the_real_smollm2_judge_gives_typed_verdicts_through_llama_cpps_json_schema(tmp_path: Path) -> None:
    """SmolLM2-135M's scores are noise; what this shows is the real path: the schema sent as llama-cpp-python's
    response_format (a grammar), every verdict validated into the rubric's model or kept as a rejection."""
    from cotforge.dataset_cards.stats import write_finished

    from .local_teacher import llama_server, require_local_teacher

    gguf = require_local_teacher()
    records = [
        made_record(f"{a}+{b}", f"k{a}{b}", str(a + b), f"{a}+{b}={a + b}\nThe answer is {a + b}", level=level)
        for a, b, level in ((1, 4, 2), (2, 3, 5), (3, 2, 1), (4, 1, 3), (0, 5, 6), (2, 2, 2))
    ]
    write_finished(BuildDir(tmp_path / "toy"), "hand-made", records, [])
    with llama_server(gguf) as url:
        teacher = {"model": "smollm2-135m-instruct", "base_url": url, "max_retries": 1}
        spec = JudgeSpec(teacher=teacher, rubrics=["faithful", "level"], structured_output="json_object", max_tokens=96)
        report = judge_build(tmp_path / "toy", spec)
        again = judge_build(tmp_path / "toy", spec)
    assert report.failed == 0 and report.asked == 12 and report.scored + report.rejected == 12
    assert (again.asked, again.reused) == (0, 12)
    assert report.completion_tokens > 0
    scores = BuildDir(tmp_path / "toy").read_judge_scores()
    assert report.scored > 0  # the grammar holds the reply to the schema's shape
    assert all(1 <= s.score <= 5 and s.reason for s in scores)


def test_a_build_with_a_judge_section_judges_its_records_and_a_resume_pays_only_for_new_ones(
    tmp_path: Path, scripted
) -> None:
    import cotforge

    questions = [f"Q{i} answer=5 verdict={3 + i % 2}" for i in range(3)]
    recipe = scripted_recipe(
        write_problems(tmp_path / "p.jsonl", questions),
        scripted.url,
        judge={"teacher": {"model": "judge", "base_url": scripted.url}, "rubrics": ["faithful", "leak"]},
        limit=2,
    )
    corpus = cotforge.build(recipe, tmp_path / "out")
    assert corpus.judged is not None and (corpus.judged.asked, corpus.judged.scored) == (4, 4)
    grown = cotforge.build(recipe.model_copy(update={"limit": None}), tmp_path / "out", extend=True)
    assert grown.judged is not None and (grown.judged.asked, grown.judged.reused) == (2, 4)
    assert len(pl.read_parquet(tmp_path / "out" / "judge_scores.parquet")) == 6


def test_an_in_process_judge_is_asked_with_the_schema_in_the_prompt_alone() -> None:
    from cotforge.judging.run import judge_teacher

    remote = JudgeSpec.model_validate({"teacher": "gpt-4o-mini", "rubrics": ["faithful"]})
    assert judge_teacher(remote, BUILTIN["faithful"]).extra_body["response_format"]["type"] == "json_schema"
    local = JudgeSpec.model_validate({"teacher": "vllm:Qwen/Qwen2.5-7B-Instruct", "rubrics": ["faithful"]})
    assert judge_teacher(local, BUILTIN["faithful"]).extra_body == {}


def test_a_build_directory_in_use_is_not_judged(tmp_path: Path, scripted) -> None:
    from cotforge.safety.lock import DirectoryInUse, directory_lock

    out = _built(tmp_path, scripted.url, ("4",))
    with directory_lock(out, "build"), pytest.raises(DirectoryInUse):
        judge_build(out, _spec(scripted.url))
    assert not _judged(scripted) and not (out / "judge_scores.parquet").exists()


def test_a_batch_api_judge_keeps_each_rubrics_batches_apart(tmp_path: Path, scripted) -> None:
    out = _built(tmp_path, scripted.url, ("4", "notjson"))
    teacher = {"model": "judge", "base_url": scripted.url, "backend": "openai-batch", "batch_poll_s": 0.01}
    spec = JudgeSpec.model_validate({"teacher": teacher, "rubrics": ["faithful", "level"]})
    report = judge_build(out, spec)
    assert (report.asked, report.scored, report.rejected, report.failed) == (4, 2, 2, 0)
    assert len(scripted.answered("/v1/batches")) == 2  # one batch per rubric
    scores = pl.read_parquet(out / "judge_scores.parquet")
    assert sorted(scores["rubric"].to_list()) == ["faithful", "level"] and set(scores["score"]) == {4}
    assert judge_build(out, spec).asked == 0


def test_a_judged_build_resumed_without_a_judge_keeps_its_means(tmp_path: Path, scripted) -> None:
    import cotforge

    questions = [f"Q{i} answer=5 verdict=4" for i in range(3)]
    recipe = scripted_recipe(write_problems(tmp_path / "p.jsonl", questions), scripted.url, limit=2)
    cotforge.build(recipe, tmp_path / "out")
    cotforge.judge(tmp_path / "out", {"teacher": {"model": "judge", "base_url": scripted.url}})
    cotforge.build(recipe.model_copy(update={"limit": None}), tmp_path / "out", extend=True)
    (entry,) = json.loads((tmp_path / "out" / "cotforge_stats.json").read_text()).values()
    assert entry["rows"] == 3 and entry["judge"] == {"faithful": {"mean": 4.0, "judged": 2, "rejected": 0}}


def test_a_damaged_judge_store_is_a_sentence_that_says_what_to_do(tmp_path: Path) -> None:
    from cotforge.judging.store import JudgeStore

    damaged = tmp_path / "judge.sqlite"
    damaged.write_bytes(b"SQLite format 3\x00" + b"torn by a full disk " * 200)
    with pytest.raises(BuildDirError, match="not a readable judge store; move it aside"):
        JudgeStore(damaged)
