from __future__ import annotations

import asyncio
import subprocess
import sys
import types
from pathlib import Path

import pytest

from cotforge.builders.pricing import cost_usd, price_per_mtok
from cotforge.builders.teachers.base import SecretRedactor, TeacherRequest, answers_from_completion
from cotforge.builders.teachers.ratelimit import RateLimiter, _Bucket, retry_after_seconds
from cotforge.schemas import TeacherSpec, TokenUsage

from .conftest import scripted_recipe, write_problems
from .test_build import build


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "2"}) == 2
    assert retry_after_seconds({"retry-after-ms": "150"}) == 0.15
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0  # in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_bucket_waits_in_proportion() -> None:
    bucket = _Bucket(60)  # one per second
    bucket.level = 0
    assert bucket.wait_for(1) == pytest.approx(1.0)
    assert bucket.wait_for(120) == pytest.approx(60.0)  # more than the capacity waits for a full bucket
    bucket.refill(bucket.stamp + 30)
    assert bucket.level == pytest.approx(30)


def test_limits_learnt_from_headers_unless_fixed() -> None:
    learnt = RateLimiter()
    learnt.observe({"x-ratelimit-limit-requests": "500", "x-ratelimit-limit-tokens": "30000"})
    assert learnt.requests.capacity == 500 and learnt.tokens.capacity == 30000
    fixed = RateLimiter(rpm=10)
    fixed.observe({"x-ratelimit-limit-requests": "500"})
    assert fixed.requests.capacity == 10


def test_rate_limit_spaces_requests() -> None:
    limiter = RateLimiter(rpm=600)  # ten per second once the first minute's allowance is spent

    async def take(n: int) -> float:
        limiter.requests.level = 0
        started = asyncio.get_running_loop().time()
        for _ in range(n):
            await limiter.acquire(1)
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(take(3)) >= 0.25


def test_build_learns_rate_limit_headers(tmp_path: Path, scripted) -> None:
    scripted.rate_limit_headers = {"x-ratelimit-limit-requests": "6000", "x-ratelimit-limit-tokens": "9000000"}
    problems = write_problems(tmp_path / "p.jsonl", ["q1 answer=5", "q2 answer=5"])
    assert build(scripted_recipe(problems, scripted.url), tmp_path / "out").accepted == 2


def test_prices() -> None:
    assert price_per_mtok(TeacherSpec.parse("gpt-4o")) == (2.5, 10.0)
    assert price_per_mtok(TeacherSpec.parse("gpt-4o-2024-08-06")) == (2.5, 10.0)
    assert price_per_mtok(TeacherSpec.parse("gpt-4o-mini-2024-07-18")) == (0.15, 0.6)
    assert price_per_mtok(TeacherSpec.parse("openai-batch:gpt-4o")) == (1.25, 5.0)
    assert price_per_mtok(TeacherSpec(model="gpt-4o", base_url="http://127.0.0.1:1/v1")) is None
    assert price_per_mtok(TeacherSpec.parse("some-new-model")) is None
    usage = TokenUsage(prompt_tokens=1_000_000, completion_tokens=100_000)
    assert cost_usd(TeacherSpec.parse("gpt-4o"), usage) == pytest.approx(3.5)


def test_redactor() -> None:
    redact = SecretRedactor(["my-secret-key-123"])
    assert redact("key my-secret-key-123 sent") == "key *** sent"
    assert redact("Incorrect API key provided: sk-proj-abc123xyz") == "Incorrect API key provided: ***"


def test_answers_share_usage_across_choices() -> None:
    completion = {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 1, "message": {"role": "assistant", "content": "b"}, "finish_reason": "stop"},
            {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "length"},
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
    }
    answers = answers_from_completion(completion, 0.5)
    assert [a.text for a in answers] == ["a", "b"]
    assert answers[0].usage == TokenUsage(prompt_tokens=50, completion_tokens=20)


class _FakeOutput:
    def __init__(self, text: str, tokens: int, finish: str) -> None:
        self.text, self.token_ids, self.finish_reason = text, list(range(tokens)), finish


def test_vllm_backend_maps_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vllm teacher against a stand-in module with vLLM's LLM.chat interface (no GPU here)."""
    calls = {}

    class LLM:
        def __init__(self, model: str, tensor_parallel_size: int) -> None:
            calls["init"] = (model, tensor_parallel_size)

        def chat(self, conversations, sampling_params, use_tqdm):
            calls["chat"] = (conversations, sampling_params)
            return [
                types.SimpleNamespace(
                    prompt_token_ids=list(range(30)),
                    outputs=[_FakeOutput(f"c{i} The answer is {i}", 8, "stop") for i in range(p.n)],
                )
                for p in sampling_params
            ]

    class SamplingParams:
        def __init__(self, **kwargs) -> None:
            self.__dict__.update(kwargs)

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    from cotforge.builders.teachers import LiveStats, make_teacher
    from cotforge.schemas import SamplingParams as Sampling

    spec = TeacherSpec.parse("vllm:Qwen/Qwen2.5-0.5B-Instruct").model_copy(update={"tensor_parallel_size": 2})
    teacher = make_teacher(spec, Sampling(n=2, temperature=0.3, seed=7), store=None)
    got = {}
    requests = [TeacherRequest("a", [{"role": "user", "content": "x"}], 2), TeacherRequest("b", [], 1)]
    asyncio.run(teacher.run(requests, lambda r, o: got.__setitem__(r.id, o), LiveStats()))
    assert calls["init"] == ("Qwen/Qwen2.5-0.5B-Instruct", 2)
    assert [p.n for p in calls["chat"][1]] == [2, 1] and calls["chat"][1][0].seed == 7
    assert [a.text for a in got["a"]] == ["c0 The answer is 0", "c1 The answer is 1"]
    assert got["a"][0].usage == TokenUsage(prompt_tokens=15, completion_tokens=8)


def test_vllm_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails
    from cotforge.builders.teachers import LiveStats, make_teacher
    from cotforge.schemas import SamplingParams as Sampling

    teacher = make_teacher(TeacherSpec.parse("vllm:m"), Sampling(), store=None)
    with pytest.raises(RuntimeError, match=r"cotforge\[vllm\]"):
        asyncio.run(teacher.run([TeacherRequest("a", [], 1)], lambda r, o: None, LiveStats()))


def test_vllm_is_not_imported_by_the_cli() -> None:
    code = "import sys, cotforge.cli, cotforge.builders.build; print('vllm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
