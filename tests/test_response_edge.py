"""Issue 36: a teacher's answer is data, never a crash. Random JSON in every field of a chat completion becomes
answers and then stored rows (a record, or a rejection that says why) without an exception; a build among good
answers with one of each bad kind finishes, stores each answer once, and a re-run asks nothing.

COTFORGE_PROPERTY_EXAMPLES sets how many completions the property test tries (200 by default; the issue's run:
COTFORGE_PROPERTY_EXAMPLES=10000 python -m pytest -q tests/test_response_edge.py -k random).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cotforge.builders.plan import Job, plan_jobs
from cotforge.builders.records import answer_to_row
from cotforge.builders.teachers.base import answers_from_completion
from cotforge.cli import app
from cotforge.recipes.sources import load_sources
from cotforge.schemas import CoTRecord, Recipe, Rejection, RejectionReason
from cotforge.schemas.tables import to_frame

from .helpers import recipe_yaml, scripted_recipe, write_problems
from .test_build import all_rows

EXAMPLES = int(os.environ.get("COTFORGE_PROPERTY_EXAMPLES", "200"))

# Pieces a hostile teacher puts in its text: trace tags, answer lines with decoys, huge numbers, unstorable
# characters, LaTeX, markdown.
FRAGMENTS = [
    "<think>", "</think>", "<THINK>", "The answer is ", "The answer is 5", "The answer is not 5", "5", "99",
    "9" * 400, "½", "\\boxed{", "}", "#### ", "Answer: ", "\n", " ", "\udc80", "\x00", "**", "\u00a0", "$", "-",
    "1/0", ",", ".", "\\frac{1}{0}",
]  # fmt: skip
noise = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=12).map("".join)
texts = noise | st.tuples(noise, st.sampled_from(["5", "99", "9" * 400, "**5**"]), noise).map(
    lambda parts: f"{parts[0]}\nThe answer is {parts[1]}{parts[2]}"
)
numbers = st.integers() | st.integers(min_value=2**62, max_value=2**70) | st.floats(allow_nan=True)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


def _field(good: st.SearchStrategy) -> st.SearchStrategy:
    """A field as a server should send it (three times in four, so the parser's later steps are reached too), or
    any JSON value in its place."""
    return st.integers(min_value=0, max_value=3).flatmap(lambda draw: json_values if draw == 3 else good)


messages = st.fixed_dictionaries(
    {"content": _field(texts)},
    optional={
        "role": _field(st.just("assistant")),
        "refusal": _field(st.none() | texts),
        "reasoning_content": _field(texts),
        "reasoning": _field(texts),
        "thinking": _field(texts),
    },
)
choices = st.fixed_dictionaries(
    {"message": _field(messages)},
    optional={
        "index": _field(st.integers(min_value=0, max_value=3)),
        "finish_reason": _field(st.sampled_from(["stop", "length", "content_filter"])),
    },
)
usages = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": _field(numbers),
        "completion_tokens": _field(numbers),
        "completion_tokens_details": _field(st.fixed_dictionaries({}, optional={"reasoning_tokens": numbers})),
    },
)
completions = _field(
    st.fixed_dictionaries(
        {"choices": _field(st.lists(_field(choices), max_size=3))}, optional={"usage": _field(usages)}
    )
)


@pytest.fixture(scope="module")
def asked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, Job]:
    problems = write_problems(tmp_path_factory.mktemp("edge") / "p.jsonl", ["q"])
    recipe = scripted_recipe(problems, "http://127.0.0.1:9/v1", max_answer_chars=2_000)
    return recipe, next(iter(plan_jobs(recipe, load_sources(recipe, sample=False))))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(completion=completions)
def test_random_json_responses_become_rows_without_an_exception(asked: tuple[Recipe, Job], completion) -> None:
    recipe, job = asked
    try:
        answers = answers_from_completion(completion, latency_s=0.5)
    except ValueError as error:  # no list of choices: a broken reply, which the teacher asks again
        assert "no 'choices' list" in str(error)
        event("no choices list: asked again")
        return
    for answer in answers:
        row = answer_to_row(job, job.keys[0], recipe, answer, [])
        assert isinstance(row, CoTRecord | Rejection)
        event("record" if isinstance(row, CoTRecord) else f"rejection: {row.reason.value}")  # what was covered
        assert type(row).model_validate_json(row.model_dump_json()).key == row.key  # the store's form
        to_frame([row], type(row))  # the Parquet outputs' form


BAD = {
    "bignumber": RejectionReason.unparseable,
    "refusalobj": RejectionReason.malformed,
    "contentlist": RejectionReason.malformed,
    "choicetext": RejectionReason.malformed,
    "surrogate": RejectionReason.unstorable_text,
}
ACCEPTED_BAD = ["fault=finishint", "fault=hugeusage", "fault=negusage", "shape=after", "shape=nested", "shape=both"]


@pytest.mark.integration
def test_a_build_with_one_answer_of_each_bad_kind_finishes_and_a_rerun_asks_nothing(tmp_path: Path, scripted) -> None:
    good = [f"good{i} answer=5" for i in range(6)]
    accepted_bad = [f"{kind} answer=5 {kind}" for kind in ACCEPTED_BAD]
    rejected_bad = [f"{kind} answer=5 fault={kind}" for kind in BAD]
    questions = [*good[:3], *rejected_bad, *accepted_bad, *good[3:]]
    problems = write_problems(tmp_path / "p.jsonl", questions)
    recipe = recipe_yaml(tmp_path / "r.yaml", scripted_recipe(problems, scripted.url))
    command = ["build", "--recipe", str(recipe), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output  # complete: every answer stored, a rejection as much as a record
    rows = all_rows(tmp_path / "out")
    assert len(rows) == len({row.key for row in rows}) == len(questions), "each answer stored once"
    by_question = {row.problem_id: row for row in rows}
    assert len(by_question) == len(questions)
    records = [row for row in rows if isinstance(row, CoTRecord)]
    assert sorted(r.question for r in records) == sorted([*good, *accepted_bad])
    assert all(r.predicted_answer == "5" and "99" not in r.rationale for r in records)
    rejected = {row.raw_response or row.detail: row.reason for row in rows if isinstance(row, Rejection)}
    assert sorted(rejected.values()) == sorted(BAD.values())
    sent = len(scripted.log)
    assert sent == len(questions), "no bad answer was asked twice"
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0 and len(scripted.log) == sent, "a re-run asks nothing"
