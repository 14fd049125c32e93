"""Reasoning-model teachers: every shape a trace comes back in, on every backend, ends in the right record or
rejection; the trace is kept apart from the rationale and the answer is never read from inside it."""

from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path

import pytest

from cotforge.answers.reasoning import split_reasoning, with_think_tags
from cotforge.builders.pricing import cost_usd
from cotforge.builders.teachers.base import TeacherRequest, answers_from_completion
from cotforge.builders.teachers.reasoning import completion_tokens, separate
from cotforge.recipes.sources.builtin import content_id
from cotforge.schemas import CoTRecord, Rejection, RejectionReason, TokenUsage
from cotforge.schemas.recipe import TEACHER, parse_teacher
from cotforge.schemas.tables import read_parquet

from .helpers import scripted_recipe, write_problems
from .scripted_server import TRACE
from .test_build import all_rows, build
from .test_teachers import _ray_run, _stand_in_vllm

# question -> what it must end as: a record (whose trace is TRACE) or a rejection and a phrase of its detail.
SHAPES = {
    "s1 answer=5 shape=reasoning_content": "record",
    "s2 answer=5 shape=reasoning": "record",
    "s3 answer=5 shape=thinking": "record",
    "s4 answer=5 shape=inline": "record",
    "s5 answer=5 shape=prefilled": "record",
    "s6 answer=5 shape=cut": (RejectionReason.truncated, "while still reasoning"),
    "s7 answer=5 shape=open": (RejectionReason.truncated, "never closed"),
    "s8 answer=5 shape=fieldcut": (RejectionReason.truncated, "while still reasoning"),
    "s9 answer=5": "plain",
}


def _check_shapes(out: Path, report) -> None:
    assert report.requested == report.accepted + sum(report.rejected.values()) + report.failed + report.pending
    assert (report.requested, report.accepted, report.failed, report.pending) == (9, 6, 0, 0)
    assert report.rejected == {RejectionReason.truncated: 3}
    rows = {row.problem_id: row for row in all_rows(out)}
    for question, expected in SHAPES.items():
        row = rows[content_id("p", "train", question)]
        if expected in ("record", "plain"):
            assert isinstance(row, CoTRecord), (question, row)
            # Read after the trace: the trace's "The answer is 99" is not the answer, and is not in the rationale.
            assert row.predicted_answer == "5" and row.correct, question
            assert "99" not in row.rationale and "<think>" not in row.rationale and "</think>" not in row.rationale
            assert row.reasoning == (TRACE if expected == "record" else None), question
            assert row.reasoning_tokens == (len(TRACE.split()) if expected == "record" else None), question
        else:
            reason, phrase = expected
            assert isinstance(row, Rejection) and row.reason is reason and phrase in row.detail, (question, row)
            assert row.raw_reasoning == TRACE, "the cut trace is kept with the rejection"


def test_every_trace_shape_on_the_chat_backend(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", list(SHAPES))
    report = build(scripted_recipe(problems, scripted.url), tmp_path / "out")
    _check_shapes(tmp_path / "out", report)
    rejections = read_parquet(tmp_path / "out" / "rejections.parquet", Rejection)
    assert {r.raw_reasoning for r in rejections} == {TRACE}, "the trace column reaches the Parquet output"
    (subset,) = (tmp_path / "out" / "subsets").iterdir()
    records = read_parquet(subset, CoTRecord)
    assert sum(r.reasoning == TRACE for r in records) == 5 and records[0].rationale.endswith("The answer is 5")


def test_every_trace_shape_on_the_batch_backend(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", list(SHAPES))
    recipe = scripted_recipe(problems, scripted.url, teacher={"backend": "openai-batch", "batch_poll_s": 0.01})
    _check_shapes(tmp_path / "out", build(recipe, tmp_path / "out"))


def test_split_reasoning_shapes() -> None:
    assert (
        split_reasoning("<think>a</think> b") == split_reasoning("a</think>b") == split_reasoning("<think>a</think>b")
    )
    assert split_reasoning("  <THINK>\na\n</think>\n\nThe answer is 5").answer == "The answer is 5"
    assert split_reasoning("<think>a, still going").closed is False
    assert split_reasoning("no trace here") == split_reasoning("no trace here")
    assert split_reasoning("no trace here").reasoning is None and split_reasoning("no trace here").closed
    assert split_reasoning("<think></think>The answer is 5").reasoning is None  # thinking off: an empty block
    assert split_reasoning(with_think_tags("a", "b")) == split_reasoning("<think>a</think>b")
    # A later "<think>" is text, not a trace: only a block at the start is one.
    assert split_reasoning("We think <think> is a tag").reasoning is None
    assert separate("<think>x</think>y", reasoning="z").reasoning == "z", "a separate field wins over inline"


def test_reasoning_tokens_are_output_tokens() -> None:
    spec = parse_teacher("o3")
    included = {"prompt_tokens": 10, "completion_tokens": 100, "completion_tokens_details": {"reasoning_tokens": 80}}
    assert completion_tokens(included) == (100, 80)
    apart = {"prompt_tokens": 10, "completion_tokens": 20, "completion_tokens_details": {"reasoning_tokens": 80}}
    assert completion_tokens(apart) == (100, 80), "a provider reporting the trace apart: added, not lost"
    body = {"choices": [{"message": {"content": "The answer is 5", "reasoning_content": "t"}}], "usage": apart}
    (answer,) = answers_from_completion(body, None)
    assert answer.usage == TokenUsage(prompt_tokens=10, completion_tokens=100) and answer.reasoning_tokens == 80
    assert cost_usd(spec, answer.usage) == pytest.approx((10 * 2.0 + 100 * 8.0) / 1e6)


def test_vllm_backend_uses_the_named_reasoning_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """With engine_args.reasoning_parser the vllm teacher asks vLLM's parser for the trace (a stand-in parser that
    marks what it returns, so the test sees it was used); chat_template_kwargs reach LLM.chat."""
    from cotforge.builders.teachers import LiveStats, make_teacher
    from cotforge.schemas import SamplingParams as Sampling

    calls: dict = {}
    vllm = _stand_in_vllm(calls)
    made: dict = {}

    class Parser:
        def __init__(self, tokenizer) -> None:
            made["tokenizer"] = tokenizer

        def extract_reasoning_content(self, text, request):
            made["request"] = request
            return "parsed trace", text.split(" ", 1)[1]

    manager = types.SimpleNamespace(get_reasoning_parser=lambda name: {"deepseek_r1": Parser}[name])
    vllm.LLM.get_tokenizer = lambda self: "tok"
    original_chat = vllm.LLM.chat

    def chat(self, conversations, sampling_params, use_tqdm, **options):
        calls["options"] = options
        return original_chat(self, conversations, sampling_params, use_tqdm)

    vllm.LLM.chat = chat
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.reasoning", types.SimpleNamespace(ReasoningParserManager=manager))
    monkeypatch.delenv("VLLM_LOGGING_CONFIG_PATH", raising=False)
    spec = TEACHER.validate_python(
        {
            "model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
            "backend": "vllm",
            "engine_args": {"reasoning_parser": "deepseek_r1"},
            "extra_body": {"chat_template_kwargs": {"enable_thinking": True}},
        }
    )
    got: dict = {}
    teacher = make_teacher(spec, Sampling(), store=None)
    asyncio.run(teacher.run([TeacherRequest("a", [], 1)], lambda r, o: got.__setitem__(r.id, o), LiveStats()))
    (answer,) = got["a"]
    assert (answer.reasoning, answer.text) == ("parsed trace", "The answer is 0") and made["tokenizer"] == "tok"
    assert calls["options"] == {"chat_template_kwargs": {"enable_thinking": True}}
    assert made["request"].chat_template_kwargs == {"enable_thinking": True}


def test_vllm_and_ray_split_inline_traces_without_a_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """No reasoning_parser: the inline split, on both in-process backends; a trace left open is marked so."""
    from cotforge.schemas import SamplingParams as Sampling

    calls: dict = {}
    question = "<think>count again</think>"
    requests = [TeacherRequest("a", [{"role": "user", "content": question}], 1)]
    got, _ = _ray_run(monkeypatch, calls, {"model": "m"}, requests, Sampling(max_tokens=100))
    (answer,) = got["a"]
    assert (answer.reasoning, answer.text, answer.reasoning_open) == ("count again", "#0", False)
    opened = [TeacherRequest("b", [{"role": "user", "content": "<think>and on"}], 1)]
    got, _ = _ray_run(monkeypatch, calls, {"model": "m"}, opened, Sampling(max_tokens=100))
    assert got["b"][0].reasoning_open and got["b"][0].reasoning == "and on #0"


# ---- reasoning-model parameters -------------------------------------------------------------------------------


def test_o_series_teacher_gets_max_completion_tokens_and_no_temperature(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5 shape=reasoning_content"])
    o_series = {"model": "o4-mini", "reasoning_effort": "high"}
    recipe = scripted_recipe(problems, scripted.url, teacher=o_series, sampling={"max_tokens": 4000})
    assert build(recipe, tmp_path / "out").accepted == 1
    (sent,) = [e.params for e in scripted.answered()]
    assert sent == {"model": "o4-mini", "n": 1, "max_completion_tokens": 4000, "reasoning_effort": "high"}
    # A plain chat model keeps the classic parameters; extra_body passes through as given.
    plain = {"model": "qwen3-8b", "extra_body": {"chat_template_kwargs": {"enable_thinking": True}}}
    build(scripted_recipe(problems, scripted.url, teacher=plain), tmp_path / "plain")
    sent = scripted.answered()[-1].params
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (1024, 0.7, 1.0)
    assert sent["chat_template_kwargs"] == {"enable_thinking": True} and "max_completion_tokens" not in sent


def test_batch_lines_take_the_same_parameters(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    teacher = {"model": "o3-2025-04-16", "backend": "openai-batch", "batch_poll_s": 0.01}
    assert build(scripted_recipe(problems, scripted.url, teacher=teacher), tmp_path / "out").accepted == 1
    (line,) = [e.params for e in scripted.log if e.path == "batch-request"]
    assert "temperature" not in line and line["max_completion_tokens"] == 1024, "a dated snapshot finds its family"


@pytest.mark.parametrize(
    ("teacher", "sampling", "field"),
    [
        ({"model": "o3"}, {"temperature": 0.2}, "sampling.temperature"),
        ({"model": "openai/gpt-5-mini"}, {"top_p": 0.9}, "sampling.top_p"),
        ({"model": "gpt-4o", "reasoning_effort": "low"}, {}, "reasoning_effort"),
        ({"model": "o3", "reasoning_effort": "minimal"}, {}, "reasoning_effort"),
        ({"model": "m", "backend": "vllm", "reasoning_effort": "low"}, {}, "reasoning_effort"),
        ({"model": "m", "extra_body": {"temperature": 0}}, {}, "extra_body.temperature"),
        ({"model": "m", "backend": "vllm", "extra_body": {"top_k": 5}}, {}, "extra_body.top_k"),
        ({"model": "m", "backend": "ray", "extra_body": {"chat_template_kwargs": {}}}, {}, "extra_body"),
    ],
)
def test_combinations_a_model_cannot_take_are_refused(teacher: dict, sampling: dict, field: str) -> None:
    from cotforge.recipes.loader import RecipeError, parse_recipe

    data = {"sources": ["svamp"], "teachers": [teacher], "sampling": sampling}
    with pytest.raises(RecipeError, match=rf"{field}(\W|$)"):
        parse_recipe(data, "recipe.yaml")


def test_capability_overrides_and_unknown_models() -> None:
    from cotforge.schemas import Recipe

    # A server hosting a model the table does not know: reasoning_effort passes on unchecked.
    served = {"model": "my-server-model", "base_url": "http://h:1/v1", "reasoning_effort": "low"}
    assert TEACHER.validate_python(served).reasoning_effort
    # The recipe corrects the table: this o3 proxy takes temperature.
    fixed = {"model": "o3", "capabilities": {"sampling": True, "token_limit": "max_tokens"}}
    recipe = Recipe.model_validate({"sources": ["svamp"], "teachers": [fixed], "sampling": {"temperature": 0.2}})
    caps = recipe.teachers[0].model_capabilities
    assert (caps.sampling, caps.token_limit, caps.efforts) == (True, "max_tokens", ("low", "medium", "high"))


def test_reasoning_options_change_keys_only_where_set() -> None:
    from cotforge.builders.plan import KeyTemplate
    from cotforge.recipes.identity import identity
    from cotforge.schemas import Recipe

    def recipe(**teacher) -> Recipe:
        return Recipe.model_validate({"sources": ["svamp"], "teachers": [{"model": "o3", **teacher}]})

    def template(r: Recipe) -> KeyTemplate:
        return KeyTemplate.make(r.teachers[0], r, 2, r.formats[0], "v1")

    plain, low, high = recipe(), recipe(reasoning_effort="low"), recipe(reasoning_effort="high")
    assert len({template(plain), template(low), template(high)}) == 3, "two efforts are two corpora"
    assert "reasoning" not in template(plain).head + template(plain).middle + template(plain).tail
    assert set(identity(plain)["teachers"][0]) == set(identity(recipe(extra_body={}))["teachers"][0])
    assert "reasoning_effort" not in identity(plain)["teachers"][0], "older recipes keep their identity"


def test_dry_run_counts_assumed_traces() -> None:
    from cotforge.builders.plan import ASSUMED_TRACE_TOKENS, summarise
    from cotforge.recipes.sources import LoadedSource
    from cotforge.schemas import Problem, Recipe

    problems = [
        Problem(id=f"p{i}", dataset="d", split="train", question=f"q{i}", answer="1", answer_type="number")
        for i in range(3)
    ]
    sources = [LoadedSource.of("d", problems)]

    def summary(teacher: dict, max_tokens: int = 8000):
        recipe = Recipe.model_validate(
            {"sources": ["svamp"], "teachers": [teacher], "sampling": {"max_tokens": max_tokens, "n": 2}}
        )
        return summarise(recipe, sources)

    plain, o3 = summary({"model": "gpt-4o"}), summary({"model": "o3", "reasoning_effort": "high"})
    assert plain.reasoning_tokens == 0
    assert o3.reasoning_tokens == 3 * 2 * ASSUMED_TRACE_TOKENS["high"]
    assert o3.completion_tokens == plain.completion_tokens + o3.reasoning_tokens
    assert o3.cost_usd == pytest.approx((o3.prompt_tokens * 2.0 + o3.completion_tokens * 8.0) / 1e6)
    assert summary({"model": "o3"}, max_tokens=500).reasoning_tokens == 3 * 2 * 500, "capped by the budget"
    thinking_on = {"model": "Qwen/Qwen3-8B", "extra_body": {"chat_template_kwargs": {"enable_thinking": True}}}
    assert summary(thinking_on).reasoning_tokens == 3 * 2 * ASSUMED_TRACE_TOKENS[None]


# ---- thinking students --------------------------------------------------------------------------------------------


def test_thinking_student_that_never_closes_its_trace(
    tmp_path: Path, student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer is read after </think> (not from the trace's "The answer is 99"); a trace the budget cut is no
    answer, counted wrong and reported apart; the trace has its own budget on top of the answer's."""
    import json

    import polars as pl

    from cotforge.recipes.sources import load_problems
    from cotforge.schemas import SourceSpec
    from cotforge.train import evaluate as evaluation

    problems = load_problems(SourceSpec(dataset="svamp"), sample=True, limit=3).problems
    gold = [p.answer for p in problems]
    generations = [
        f"<think>{TRACE}</think>\nThe answer is {gold[0]}",  # closed: right
        f"{TRACE}\n</think>\nThe answer is {gold[1]}",  # the template prefilled <think>: right
        f"<think>{TRACE} The answer is {gold[2]}, so",  # never closed: the gold inside the trace is not read
    ]
    budgets: list[int] = []

    def generate(model_dir, tokenizer, prompts, max_new_tokens, *rest):
        budgets.append(max_new_tokens)
        return generations[: len(prompts)]

    monkeypatch.setattr(evaluation, "_generate_transformers", generate)
    report = evaluation.evaluate_problems(
        str(student), problems, max_new_tokens=64, thinking_tokens=512, use_vllm=False, out_dir=tmp_path
    )
    assert budgets == [576], "the trace's budget on top of the answer's"
    assert (report.total, report.correct, report.unclosed) == (3, 2, 1)
    predictions = pl.read_parquet(tmp_path / "predictions.parquet")
    assert predictions["trace_closed"].to_list() == [True, True, False]
    assert predictions["predicted_answer"].to_list() == [gold[0], gold[1], None]
    assert predictions["reasoning"].to_list()[:2] == [TRACE, TRACE]
    assert json.loads((tmp_path / "eval_report.json").read_text())["unclosed"] == 1


# ---- the trace in exports and on the card -------------------------------------------------------------------------


@pytest.fixture
def traced_build(tmp_path: Path, scripted) -> Path:
    """A build of two answers: one from a reasoning teacher's inline trace, one plain."""
    problems = write_problems(tmp_path / "p.jsonl", ["t1 answer=5 shape=inline", "t2 answer=5"])
    build(scripted_recipe(problems, scripted.url), tmp_path / "build")
    return tmp_path / "build"


def _by_trace(rows: list, text) -> tuple:
    """(the row of the traced answer, the plain one), told apart by `text(row)`."""
    traced = [row for row in rows if TRACE in text(row)]
    assert len(traced) == 1, rows
    return traced[0], next(row for row in rows if row is not traced[0])


def test_export_llama_factory_puts_the_trace_in_think_tags(traced_build: Path, tmp_path: Path) -> None:
    import json

    from cotforge.interop import export
    from cotforge.schemas.record import ReasoningView

    export(traced_build, tmp_path / "lf", "llama-factory")
    (rows,) = [json.loads(p.read_text()) for p in (tmp_path / "lf").glob("scripted-*.json")]
    traced, plain = _by_trace(rows, lambda row: row["output"])
    assert split_reasoning(traced["output"]).reasoning == TRACE
    assert split_reasoning(traced["output"]).answer.endswith("The answer is 5")
    assert "<think>" not in plain["output"], "a record without a trace is exported as it was"
    export(traced_build, tmp_path / "drop", "llama-factory", reasoning=ReasoningView.drop)
    (dropped,) = [json.loads(p.read_text()) for p in (tmp_path / "drop").glob("scripted-*.json")]
    assert all(TRACE not in row["output"] and "<think>" not in row["output"] for row in dropped)


def test_export_trl_messages_carry_reasoning_content(traced_build: Path, tmp_path: Path) -> None:
    import json

    from cotforge.interop import export

    (path,) = export(traced_build, tmp_path, "trl-messages")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    traced, plain = _by_trace(rows, lambda row: json.dumps(row))
    assistant = traced["messages"][-1]
    assert assistant["role"] == "assistant" and assistant["reasoning_content"] == TRACE
    assert "<think>" not in assistant["content"] and assistant["content"].endswith("The answer is 5")
    assert "reasoning_content" not in plain["messages"][-1]


def test_export_trl_prompt_completion_puts_the_trace_before_the_answer(traced_build: Path, tmp_path: Path) -> None:
    import json

    from cotforge.interop import export

    (path,) = export(traced_build, tmp_path, "trl-prompt-completion")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    traced, _ = _by_trace(rows, lambda row: row["completion"])
    assert traced["completion"].startswith("<think>") and split_reasoning(traced["completion"]).reasoning == TRACE


def test_card_documents_the_reasoning_column() -> None:
    from cotforge.dataset_cards import render_card

    card = render_card("user/corpus", [])
    fields = card.split("## Fields", 1)[1].split("## Samples", 1)[0]
    assert "`reasoning`" in fields and "`reasoning_tokens`" in fields and "--reasoning keep" in fields


# ---- training views of a trace ----------------------------------------------------------------------------------


def _supervised_text(tokenizer, example) -> str:
    """The text the loss covers: the tokens whose label is not IGNORE."""
    from cotforge.train.data import IGNORE

    return tokenizer.decode([t for t in example.labels if t != IGNORE])


def test_reasoning_keep_puts_the_loss_on_the_trace_and_drop_does_not(traced_build: Path, student: Path) -> None:
    import copy

    from cotforge.schemas.record import ReasoningView
    from cotforge.train.data import load_pairs, renders_reasoning_content, tokenize
    from cotforge.train.student import load_tokenizer

    tokenizer = load_tokenizer(str(student), None)
    assert not renders_reasoning_content(tokenizer), "SmolLM2's template ignores reasoning_content"
    kept = tokenize(load_pairs(str(traced_build), reasoning=ReasoningView.keep), tokenizer, "chat", 512)
    dropped = tokenize(load_pairs(str(traced_build), reasoning=ReasoningView.drop), tokenizer, "chat", 512)
    kept_text = [_supervised_text(tokenizer, e) for e in kept.examples]
    dropped_text = [_supervised_text(tokenizer, e) for e in dropped.examples]
    assert sum(TRACE in t and "<think>" in t for t in kept_text) == 1, "explicit <think> tags, under the loss"
    assert all(t.rstrip().endswith(("The answer is 5<|im_end|>", "The answer is 5")) for t in kept_text)
    assert not any(TRACE in t or "<think>" in t for t in dropped_text)
    assert kept.completion_tokens > dropped.completion_tokens
    # A template that renders reasoning_content gets the trace there, in its own markup, still under the loss.
    thinking = copy.deepcopy(tokenizer)
    thinking.chat_template = (
        "{% for m in messages %}<|{{ m.role }}|>{% if m.reasoning_content %}[thinking]{{ m.reasoning_content }}"
        "[/thinking]{% endif %}{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    assert renders_reasoning_content(thinking)
    kept = tokenize(load_pairs(str(traced_build), reasoning=ReasoningView.keep), thinking, "chat", 512)
    (traced,) = [t for t in (_supervised_text(thinking, e) for e in kept.examples) if TRACE in t]
    assert traced.startswith(f"[thinking]{TRACE}[/thinking]") and "<think>" not in traced


# ---- mixtures ---------------------------------------------------------------------------------------------------


def test_mixture_takes_each_subset_by_weight_without_repeats(paper_build: Path) -> None:
    from cotforge.schemas.record import ReasoningView
    from cotforge.train.data import load_pairs, training_pairs

    drop = ReasoningView.drop
    level1 = set(load_pairs(str(paper_build), "gpt-4o-g1-cot", reasoning=drop))
    human = set(load_pairs(str(paper_build), "human-cot", reasoning=drop))
    assert len(level1) == len(human) == 700 and not level1 & human
    mixture = {"gpt-4o-g1-cot": 0.8, "human-cot": 0.2}
    mixed = training_pairs(str(paper_build), None, "train", drop, mixture, seed=1)
    # The largest 80/20 mixture of two 700-row subsets: all 700 of the first, 175 of the second.
    assert (sum(p in level1 for p in mixed), sum(p in human for p in mixed)) == (700, 175)
    assert len(set(mixed)) == len(mixed), "no example twice"
    again = training_pairs(str(paper_build), None, "train", drop, mixture, seed=1)
    other = training_pairs(str(paper_build), None, "train", drop, mixture, seed=2)
    assert again == mixed and set(other) != set(mixed), "seeded"


def test_mixture_settings_are_checked() -> None:
    from typer.testing import CliRunner

    from cotforge.cli import app
    from cotforge.train import TrainConfig

    with pytest.raises(ValueError, match="mixture: give a subset or a mixture"):
        TrainConfig(model="m", dataset="d", subset="a", mixture={"a": 1, "b": 1})
    with pytest.raises(ValueError, match="at least two subsets"):
        TrainConfig(model="m", dataset="d", mixture={"a": 1})
    from cotforge.dataset_cards.model_card import render_model_card

    config = TrainConfig(model="m", dataset="d", mixture={"native": 0.5, "g3": 0.5})
    card = render_model_card("me/s", config.flat(), steps=3, examples=10, final_loss=0.5)
    assert "(subset `native:0.5 + g3:0.5`)" in card, "the card names the mixture the student was trained on"
    result = CliRunner().invoke(app, ["train", "--model", "m", "--dataset", "d", "--mix", "a:0.5", "--mix", "b:x"])
    assert result.exit_code == 2 and "--mix b:x is not SUBSET:WEIGHT" in result.output


# ---- the native arm ---------------------------------------------------------------------------------------------


def test_native_arm_keeps_the_teachers_own_trace_as_the_cot(tmp_path: Path, scripted) -> None:
    from cotforge.recipes.identity import differences, identity
    from cotforge.recipes.prompts.templates import NATIVE_GUIDE

    problems = write_problems(tmp_path / "p.jsonl", ["n1 answer=5 shape=reasoning_content", "n2 answer=5"])
    recipe = scripted_recipe(problems, scripted.url, native=True)
    report = build(recipe, tmp_path / "out")
    # Two problems x (level 2 + native): the plain teacher's native answer has no trace to be the CoT.
    assert (report.requested, report.accepted, report.rejected) == (4, 3, {RejectionReason.no_trace: 1})
    assert report.subsets == {"scripted-g2-cot": 2, "scripted-native-cot": 1}
    (native,) = read_parquet(tmp_path / "out" / "subsets" / "scripted-native-cot.parquet", CoTRecord)
    assert (native.granularity, native.format_mode.value) == (None, "native")
    assert native.reasoning == TRACE and native.rationale.endswith("The answer is 5") and native.correct
    native_chats = [e.chat for e in scripted.answered() if NATIVE_GUIDE in e.chat]
    assert len(native_chats) == 2, "the native prompt asks for the answer line alone, once per problem"
    plain = scripted_recipe(problems, scripted.url)
    assert "native" not in identity(plain), "recipes without the arm keep their identity"
    assert differences(plain, recipe) == ["native: null -> true"]
    rerun = build(recipe, tmp_path / "out")
    assert rerun.last_run is not None and rerun.last_run.requests_sent == 0, "native keys are stable across runs"


def test_dry_run_counts_the_native_arm() -> None:
    from cotforge.builders.plan import ASSUMED_TRACE_TOKENS, summarise
    from cotforge.recipes.sources import LoadedSource
    from cotforge.schemas import Problem, Recipe

    problems = [Problem(id="p", dataset="d", split="train", question="q", answer="1", answer_type="number")]
    base = {"sources": ["svamp"], "teachers": [{"model": "o3"}], "granularities": [3]}
    plain = summarise(Recipe.model_validate(base), [LoadedSource.of("d", problems)])
    native = summarise(Recipe.model_validate({**base, "native": True}), [LoadedSource.of("d", problems)])
    assert (plain.answers, native.answers, native.combinations) == (1, 2, 2)
    assert native.reasoning_tokens == 2 * min(ASSUMED_TRACE_TOKENS[None], 1024)


def test_card_statistics_measure_the_native_trace(tmp_path: Path, scripted) -> None:
    from cotforge.corpus import BuildDir
    from cotforge.dataset_cards import subset_stats

    problems = write_problems(tmp_path / "p.jsonl", ["n1 answer=5 shape=reasoning_content"])
    build(scripted_recipe(problems, scripted.url, native=True), tmp_path / "out")
    subsets = BuildDir(tmp_path / "out").read_subsets()
    native, level = subset_stats("n", subsets["scripted-native-cot"]), subset_stats("l", subsets["scripted-g2-cot"])
    # Same reply text in both; the native subset's CoT also counts its trace, the level's rationale does not.
    assert native.median_words == level.median_words + len(TRACE.split())
