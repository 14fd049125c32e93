from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from cotforge.builders.pricing import cost_usd, price_per_mtok
from cotforge.builders.teachers.base import LiveStats, SecretRedactor, TeacherRequest, answers_from_completion
from cotforge.builders.teachers.ratelimit import RateLimiter, _Bucket, retry_after_seconds
from cotforge.schemas import TokenUsage
from cotforge.schemas.recipe import TEACHER, OpenAITeacherSpec, parse_teacher

from .helpers import scripted_recipe, write_problems
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
    assert price_per_mtok(parse_teacher("gpt-4o")) == (2.5, 10.0)
    assert price_per_mtok(parse_teacher("gpt-4o-2024-08-06")) == (2.5, 10.0)
    assert price_per_mtok(parse_teacher("gpt-4o-mini-2024-07-18")) == (0.15, 0.6)
    assert price_per_mtok(parse_teacher("openai-batch:gpt-4o")) == (1.25, 5.0)
    assert price_per_mtok(OpenAITeacherSpec(model="gpt-4o", base_url="http://127.0.0.1:1/v1")) is None
    assert price_per_mtok(parse_teacher("some-new-model")) is None
    usage = TokenUsage(prompt_tokens=1_000_000, completion_tokens=100_000)
    assert cost_usd(parse_teacher("gpt-4o"), usage) == pytest.approx(3.5)


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


def _stand_in_vllm(calls: dict, fail: str | None = None) -> types.SimpleNamespace:
    """A module with vLLM's interface: EngineArgs, LLM(**engine args), LLM.chat with its progress hook and
    per-request metrics (engine timestamps). `fail`: chat raises RuntimeError(fail), as a dying engine does."""

    @dataclasses.dataclass
    class EngineArgs:
        model: str = ""
        tensor_parallel_size: int = 1
        data_parallel_size: int = 1
        max_model_len: int | None = None
        reasoning_parser: str | None = None

    class LLM:
        def __init__(self, model: str, **engine_args) -> None:
            time.sleep(0.01)  # loading weights
            calls["init"] = (model, engine_args)

        def chat(self, conversations, sampling_params, use_tqdm):
            calls["chat"] = (conversations, sampling_params)
            calls["in_flight"] = []
            if fail:
                raise RuntimeError(fail)
            bar = use_tqdm(total=len(conversations), desc="Processed prompts")
            outputs = []
            for index, params in enumerate(sampling_params):
                outputs.append(
                    types.SimpleNamespace(
                        prompt_token_ids=list(range(30)),
                        outputs=[_FakeOutput(f"c{i} The answer is {i}", 8, "stop") for i in range(params.n)],
                        metrics=types.SimpleNamespace(queued_ts=100.0, last_token_ts=100.5 + index),
                    )
                )
                bar.update(params.n)
                calls["in_flight"].append(stats.in_flight)
            bar.close()
            return outputs

    class SamplingParams:
        def __init__(self, **kwargs) -> None:
            self.__dict__.update(kwargs)

    stats = LiveStats()
    calls["stats"] = stats
    return types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams, EngineArgs=EngineArgs, __version__="0.0-test")


def test_vllm_backend_maps_outputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The vllm teacher against a stand-in module with vLLM's interface (the real one: tests/test_vllm_real.py)."""
    from cotforge.builders.store import Store
    from cotforge.builders.teachers import make_teacher
    from cotforge.schemas import SamplingParams as Sampling

    calls: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", _stand_in_vllm(calls))
    monkeypatch.delenv("VLLM_LOGGING_CONFIG_PATH", raising=False)
    spec = TEACHER.validate_python(
        {
            "model": "Qwen/Qwen2.5-0.5B-Instruct",
            "backend": "vllm",
            "engine_args": {"tensor_parallel_size": 2, "max_model_len": 2048, "data_parallel_size": 2},
        }
    )
    with Store(tmp_path / "store.sqlite") as store:
        teacher = make_teacher(spec, Sampling(n=2, temperature=0.3, seed=7), store=store)
        got = {}
        requests = [TeacherRequest("a", [{"role": "user", "content": "x"}], 2), TeacherRequest("b", [], 1)]
        stats = calls["stats"]
        asyncio.run(teacher.run(iter(requests), lambda r, o: got.__setitem__(r.id, o), stats))
    engine_args = {"tensor_parallel_size": 2, "max_model_len": 2048, "data_parallel_size": 2}
    assert calls["init"] == ("Qwen/Qwen2.5-0.5B-Instruct", engine_args), "engine arguments pass through"
    assert [p.n for p in calls["chat"][1]] == [2, 1] and calls["chat"][1][0].seed == 7
    assert [a.text for a in got["a"]] == ["c0 The answer is 0", "c1 The answer is 1"]
    assert got["a"][0].usage == TokenUsage(prompt_tokens=15, completion_tokens=8)
    # Progress moves while the engine works: in flight falls as each prompt finishes, not at the chunk's end.
    assert calls["in_flight"] == [1, 0]
    # Each answer's latency is its own request's, not the chunk's average; start-up is counted apart.
    assert (got["a"][0].latency_s, got["b"][0].latency_s) == (0.5, 1.5)
    assert stats.engine_start_s >= 0.01 and stats.requests_sent == 2
    assert os.environ["VLLM_LOGGING_CONFIG_PATH"].startswith(str(tmp_path)), "vLLM logs beside the store"
    monkeypatch.delenv("VLLM_LOGGING_CONFIG_PATH")


def test_vllm_engine_args_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from cotforge.builders.teachers import make_teacher
    from cotforge.builders.teachers.base import TeacherError
    from cotforge.schemas import SamplingParams as Sampling

    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        TEACHER.validate_python({"model": "m", "backend": "vllm", "engine_args": {"gpu_memory_utilization": 2}})
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", _stand_in_vllm(calls))
    spec = TEACHER.validate_python({"model": "m", "backend": "vllm", "engine_args": {"max_modle_len": 4096}})
    teacher = make_teacher(spec, Sampling(), store=None)
    with pytest.raises(TeacherError, match="engine_args max_modle_len: not an argument") as raised:
        asyncio.run(teacher.run([TeacherRequest("a", [], 1)], lambda r, o: None, calls["stats"]))
    assert raised.value.usage and "init" not in calls


def test_vllm_seeded_split_crash_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    from cotforge.builders.teachers import make_teacher
    from cotforge.builders.teachers.base import TeacherError
    from cotforge.schemas import SamplingParams as Sampling

    calls: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", _stand_in_vllm(calls, fail="CPU Generator does not use offset"))
    teacher = make_teacher(parse_teacher("vllm:m"), Sampling(seed=1), store=None)
    with pytest.raises(TeacherError, match=r"drop sampling\.seed, or raise engine_args\.max_num_batched_tokens"):
        asyncio.run(teacher.run([TeacherRequest("a", [], 1)], lambda r, o: None, calls["stats"]))


def test_vllm_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails
    from cotforge.builders.teachers import LiveStats, make_teacher
    from cotforge.schemas import SamplingParams as Sampling

    teacher = make_teacher(parse_teacher("vllm:m"), Sampling(), store=None)
    with pytest.raises(RuntimeError, match=r"cotforge\[vllm\]"):
        asyncio.run(teacher.run([TeacherRequest("a", [], 1)], lambda r, o: None, LiveStats()))


def test_vllm_is_not_imported_by_the_cli() -> None:
    code = "import sys, cotforge.cli, cotforge.builders.build; print('vllm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def _stand_in_ray(calls: dict, gpus: int = 0, fail_prompt: str | None = None, die: bool = False):
    """Modules with the interface cotforge uses of Ray and Ray Data LLM: ray.init, cluster_resources, from_items,
    build_processor(config, preprocess, postprocess) and iter_batches. Rows come back in reverse order, as a
    cluster's may, and the engine carries input columns through as Ray Data does."""
    ray = types.ModuleType("ray")
    data = types.ModuleType("ray.data")
    llm = types.ModuleType("ray.data.llm")
    state = {"up": False}

    def init(**options):
        calls["init"] = options
        state["up"] = True

    def shutdown():
        calls["shutdown"] = True
        state["up"] = False

    class Batch:
        def __init__(self, rows):
            self.rows = rows

        def to_pylist(self):
            return self.rows

    class Dataset:
        def __init__(self, rows):
            self.rows = rows

        def iter_batches(self, batch_size, batch_format):
            assert batch_format == "pyarrow"
            for start in range(0, len(self.rows), 2):
                yield Batch(self.rows[start : start + 2])
            if die:
                raise RuntimeError("ActorDiedError: the actor died unexpectedly\nWorker exit type: SYSTEM_ERROR")

    def build_processor(config, preprocess, postprocess, postprocess_map_kwargs):
        calls["config"] = config
        assert postprocess_map_kwargs == {"num_cpus": 0}, "a small cluster's CPUs must not hold results back"

        def run(dataset):
            out = []
            for row in reversed(dataset.rows):
                request = preprocess(row)
                calls.setdefault("params", []).append(request["sampling_params"])
                text = request["messages"][0]["content"] if request["messages"] else ""
                error = "ValueError: prompt too long" if text == fail_prompt else ""
                tokens = 0 if error else 8 + request["sampling_params"].get("seed", 0)
                generated = {
                    "generated_text": f"{text} #{row['sample']}",
                    "num_input_tokens": 30,
                    "num_generated_tokens": tokens,
                    "time_taken_llm": 0.25,
                    "__inference_error__": error,
                }
                out.append(postprocess({**request, **generated}))
            return Dataset(out)

        return run

    ray.init, ray.shutdown, ray.is_initialized = init, shutdown, lambda: state["up"]
    ray.cluster_resources = lambda: {"CPU": 2.0, **({"GPU": float(gpus)} if gpus else {})}
    data.DataContext = types.SimpleNamespace(get_current=lambda: types.SimpleNamespace())
    data.from_items = lambda rows, override_num_blocks: Dataset(rows)
    data.llm = llm
    ray.data = data
    llm.build_processor = build_processor
    llm.vLLMEngineProcessorConfig = lambda **config: config
    return {"ray": ray, "ray.data": data, "ray.data.llm": llm}


def _ray_run(
    monkeypatch: pytest.MonkeyPatch, calls: dict, spec: dict, requests, sampling=None, got=None, **ray_options
):
    from cotforge.builders.teachers import make_teacher
    from cotforge.schemas import SamplingParams as Sampling

    for name, module in _stand_in_ray(calls, **ray_options).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "vllm", None)  # the driver need not have vLLM
    teacher = make_teacher(TEACHER.validate_python({"backend": "ray", **spec}), sampling or Sampling(), None)
    got = {} if got is None else got
    stats = LiveStats()
    asyncio.run(teacher.run(iter(requests), lambda r, o: got.__setitem__(r.id, o), stats))
    return got, stats


def test_ray_backend_expands_samples_and_gathers_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ray teacher against stand-in Ray modules (the real one: tests/test_vllm_real.py)."""
    from cotforge.schemas import SamplingParams as Sampling

    calls: dict = {}
    spec = {"model": "Qwen/Qwen2.5-0.5B-Instruct", "engine_args": {"max_model_len": 2048},
            "ray": {"replicas": 3, "batch_size": 16}}  # fmt: skip
    requests = [TeacherRequest("a", [{"role": "user", "content": "qa"}], 3), TeacherRequest("b", [], 1)]
    got, stats = _ray_run(monkeypatch, calls, spec, requests, Sampling(n=3, seed=5, max_tokens=15))
    config = calls["config"]
    assert (config["model_source"], config["concurrency"], config["batch_size"]) == (spec["model"], 3, 16)
    assert config["engine_kwargs"] == {"max_model_len": 2048}, (
        "vLLM's own defaults (tensor_parallel_size 1) stay its own"
    )
    assert config["placement_group_config"] == {"bundles": [{"CPU": 1}]}, "no GPU in the cluster: CPU engines"
    # n answers are n rows, each with its own seed, gathered back in sample order whatever order they arrive in.
    assert sorted(p["seed"] for p in calls["params"]) == [5, 5, 6, 7]
    assert [a.text for a in got["a"]] == ["qa #0", "qa #1", "qa #2"]
    assert [a.finish_reason for a in got["a"]] == ["stop", "stop", "length"], "all of max_tokens: cut"
    assert got["a"][0].usage == TokenUsage(prompt_tokens=30, completion_tokens=13) and got["a"][0].latency_s == 0.25
    assert stats.requests_sent == 2 and stats.in_flight == 0
    assert calls["init"]["log_to_driver"] is False and calls["shutdown"], "a cluster it started, it stops"


def test_ray_backend_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    from cotforge.builders.teachers.base import Failure, TeacherError

    calls: dict = {}
    requests = [TeacherRequest(q, [{"role": "user", "content": q}], 1) for q in ("ok", "long", "also")]
    got, _ = _ray_run(monkeypatch, calls, {"model": "m"}, requests, fail_prompt="long", gpus=1)
    assert isinstance(got["long"], Failure) and "prompt too long" in got["long"].detail, "one prompt's failure"
    assert [a.text for a in got["ok"]] == ["ok #0"] and "placement_group_config" not in calls["config"]
    stored: dict = {}
    with pytest.raises(TeacherError, match="the Ray run failed: RuntimeError: Worker exit type: SYSTEM_ERROR"):
        _ray_run(monkeypatch, calls, {"model": "m"}, requests, got=stored, die=True)
    assert len(stored) == 3 and calls["shutdown"], "what arrived before the cluster failed is kept"


def test_ray_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from cotforge.builders.teachers import make_teacher
    from cotforge.schemas import SamplingParams as Sampling

    monkeypatch.setitem(sys.modules, "ray", None)
    teacher = make_teacher(parse_teacher("ray:m"), Sampling(), store=None)
    with pytest.raises(RuntimeError, match=r"install ray\[data\]") as raised:
        asyncio.run(teacher.run([TeacherRequest("a", [], 1)], lambda r, o: None, LiveStats()))
    assert raised.value.usage
