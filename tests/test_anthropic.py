"""The Anthropic Messages API backend against a scripted Messages server (tests/messages_server.py), and the
registry every backend is found through."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from cotforge.builders.pricing import price_per_mtok
from cotforge.builders.teachers import LiveStats, MissingApiKey, Outcome, TeacherRequest, make_teacher
from cotforge.schemas import BACKENDS, Recipe, SamplingParams
from cotforge.schemas.record import TokenUsage
from cotforge.schemas.teachers import BACKEND_NAMES, TEACHER, parse_teacher

from .helpers import scripted_recipe, write_problems
from .messages_server import MessagesServer
from .scripted_server import TRACE
from .test_build import build


@pytest.fixture
def messages():
    server = MessagesServer().start()
    yield server
    server.stop()


def _spec(server: MessagesServer, **changes):
    fields = {"model": "claude-sonnet-4-5", "backend": "anthropic", "base_url": server.url, "max_retries": 0}
    return TEACHER.validate_python(fields | changes)


def _ask(spec, *questions: str, sampling: SamplingParams | None = None) -> dict[str, Outcome]:
    got: dict[str, Outcome] = {}
    chats = {q: [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}] for q in questions}
    requests = [TeacherRequest(q, chat, 1) for q, chat in chats.items()]
    teacher = make_teacher(spec, sampling or SamplingParams(), store=None)
    asyncio.run(teacher.run(requests, lambda r, o: got.__setitem__(r.id, o), LiveStats()))
    return got


def test_messages_request_and_reply(messages: MessagesServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key from ANTHROPIC_API_KEY in x-api-key, the API version, the system prompt apart, max_tokens and
    temperature; the text block is the answer, end_turn a stop, input and output tokens the usage."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    (answer,) = _ask(_spec(messages), "two and three answer=5", sampling=SamplingParams(temperature=0.3))[
        "two and three answer=5"
    ]
    assert answer.text == "We work it out step by step.\nThe answer is 5" and answer.finish_reason == "stop"
    # The scripted server counts the messages' characters / 4: the system prompt went apart, not among them.
    assert answer.usage == TokenUsage(prompt_tokens=len("two and three answer=5") // 4, completion_tokens=11)
    assert messages.headers_seen == [{"x-api-key": "sk-ant-test-key", "anthropic-version": "2023-06-01"}]
    (entry,) = messages.answered("/v1/messages")
    assert entry.params == {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "Be brief.", "temperature": 0.3}
    assert '"role": "system"' not in entry.chat


def test_thinking_blocks_are_the_trace_and_max_tokens_is_a_cut(messages: MessagesServer) -> None:
    got = _ask(_spec(messages), "a shape=thinking answer=7", "b fault=length")
    (traced,) = got["a shape=thinking answer=7"]
    assert (traced.reasoning, traced.text.splitlines()[-1]) == (TRACE, "The answer is 7")
    (cut,) = got["b fault=length"]
    assert cut.finish_reason == "length" and cut.text == "We work it out step"


def test_fields_out_of_shape_are_checked_at_the_edge(messages: MessagesServer) -> None:
    """A block out of shape makes the answer malformed (stored as a rejection, not asked again); counts out of range
    are unknown and a stop reason that is no text is unknown, the answer kept; a reply without a content list is
    broken (asked again, here no retries: a failure); a tool_use block is not read."""
    got = _ask(
        _spec(messages),
        *(
            f"q mangle={how}"
            for how in ("blockstr", "textint", "notype", "nocontent", "badusage", "stopint", "tooluse")
        ),
    )
    assert got["q mangle=blockstr"][0].malformed == "content[0]: str, not an object"
    assert got["q mangle=textint"][0].malformed == "content[0].text: missing or not text"
    assert got["q mangle=notype"][0].malformed == "content[0].type: missing or not text"
    failure = got["q mangle=nocontent"]
    assert not isinstance(failure, list) and "no 'content' list" in failure.detail
    (uncounted,) = got["q mangle=badusage"]
    assert uncounted.usage is None and uncounted.malformed is None and uncounted.text.endswith("The answer is 42")
    (unknown_stop,) = got["q mangle=stopint"]
    assert unknown_stop.finish_reason is None and unknown_stop.malformed is None
    (with_tool,) = got["q mangle=tooluse"]
    assert with_tool.malformed is None and with_tool.text.endswith("The answer is 42")


def test_samples_are_one_request_each_and_overload_is_retried(messages: MessagesServer) -> None:
    """The API has no `n`: three samples are three requests; a 503 (as an overloaded API) is asked again."""
    got: dict[str, Outcome] = {}
    teacher = make_teacher(_spec(messages, max_retries=2, retry_backoff_s=0.01), SamplingParams(n=3), None)
    request = TeacherRequest("r", [{"role": "user", "content": "q fault=503"}], 3)
    asyncio.run(teacher.run([request], lambda r, o: got.__setitem__(r.id, o), LiveStats()))
    assert isinstance(got["r"], list) and len(got["r"]) == 3
    assert [e.status for e in messages.log] == [503, 200, 200, 200]
    assert all("n" not in e.params for e in messages.log)


def test_a_build_with_an_anthropic_teacher(messages: MessagesServer, tmp_path: Path) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q1 answer=5", "q2 answer=5"])
    teacher = {"backend": "anthropic", "model": "claude-haiku-4-5", "max_retries": 3}
    recipe = scripted_recipe(problems, messages.url, teacher=teacher)
    assert build(recipe, tmp_path / "out").accepted == 2
    assert len(messages.answered("/v1/messages")) == 2


def test_key_price_and_options_of_an_anthropic_teacher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    claude = parse_teacher("anthropic:claude-sonnet-4-5-20250929")
    with pytest.raises(MissingApiKey, match="set the ANTHROPIC_API_KEY environment variable to an Anthropic API key"):
        claude.api_key()
    assert price_per_mtok(claude) == (3.0, 15.0)
    assert price_per_mtok(parse_teacher("anthropic:claude-opus-4-5")) == (5.0, 25.0)
    with pytest.raises(ValidationError, match="reasoning_effort: the anthropic backend has no such parameter; ask"):
        TEACHER.validate_python({"backend": "anthropic", "model": "m", "reasoning_effort": "high"})
    with pytest.raises(ValidationError, match=r"batch_poll_s: not an option of an anthropic teacher \(openai-batch"):
        TEACHER.validate_python({"backend": "anthropic", "model": "m", "batch_poll_s": 3})
    with pytest.raises(ValidationError, match=r"expected tags: 'openai', 'openai-batch', 'vllm', 'ray', 'anthropic'"):
        Recipe.model_validate({"sources": ["gsm8k"], "teachers": [{"backend": "claude", "model": "m"}]})


def test_every_backend_names_its_client() -> None:
    """The registry is the one list: each backend's class names a client that builds teachers of it, and the
    command line's backend:MODEL reaches each one."""
    assert BACKEND_NAMES == ("openai", "openai-batch", "vllm", "ray", "anthropic")
    for backend in BACKENDS:
        module, _, name = backend.client.partition(":")
        assert callable(getattr(importlib.import_module(module), name).for_build), backend
        assert type(parse_teacher(f"{backend.backend_name()}:some/model")) is backend
