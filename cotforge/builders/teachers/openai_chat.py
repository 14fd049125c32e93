"""The OpenAI chat API, or any OpenAI-compatible server (vllm serve, llama.cpp, hosted providers)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence

import openai

from cotforge.builders.teachers.base import (
    Answer,
    Failure,
    LiveStats,
    Outcome,
    SecretRedactor,
    Sink,
    TeacherRequest,
    answers_from_completion,
    api_key_for,
    chat_params,
)
from cotforge.builders.teachers.ratelimit import RateLimiter, retry_after_seconds
from cotforge.schemas.recipe import SamplingParams, TeacherSpec

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 300.0
_CHARS_PER_TOKEN = 4


class OpenAITeacher:
    """Bounded concurrency, RPM/TPM limits, retries with jittered exponential backoff that honour Retry-After."""

    def __init__(self, spec: TeacherSpec, sampling: SamplingParams) -> None:
        self.spec = spec
        self.sampling = sampling
        key = api_key_for(spec)
        self.redact = SecretRedactor([key])
        # Retries are ours (they must honour our limiter and be counted), so the client's own are off.
        self.client = openai.AsyncOpenAI(api_key=key, base_url=spec.base_url, max_retries=0, timeout=spec.timeout_s)
        self.limiter = RateLimiter(spec.rpm, spec.tpm)

    async def run(self, requests: Sequence[TeacherRequest], sink: Sink, stats: LiveStats) -> None:
        queue = iter(requests)

        async def worker() -> None:
            for request in queue:  # workers share one iterator: each request goes to exactly one worker
                if stats.stop:
                    return
                sink(request, await self.answer(request, stats))

        workers = min(self.spec.max_concurrency, len(requests))
        try:
            await asyncio.gather(*(worker() for _ in range(workers)))
        finally:
            await self.client.close()

    async def answer(self, request: TeacherRequest, stats: LiveStats) -> Outcome:
        """All `request.n` answers; servers that return fewer choices than asked are asked again for the rest."""
        answers: list[Answer] = []
        while len(answers) < request.n:
            got = await self._call(request.messages, request.n - len(answers), stats)
            if isinstance(got, Failure):
                return answers or got  # keep what was paid for; the build marks the rest failed
            if not got:
                return answers or Failure("the server returned no choices")
            answers.extend(got)
        return answers[: request.n]

    async def _call(self, messages: list[dict[str, str]], n: int, stats: LiveStats) -> list[Answer] | Failure:
        prompt_chars = sum(len(m["content"]) for m in messages)
        tokens = prompt_chars // _CHARS_PER_TOKEN + self.sampling.max_tokens * n
        params = chat_params(self.spec, self.sampling, n)
        last_error = ""
        for attempt in range(self.spec.max_retries + 1):
            await self.limiter.acquire(tokens)
            delay = None
            stats.in_flight += 1
            stats.requests_sent += 1
            started = time.monotonic()
            try:
                raw = await self.client.chat.completions.with_raw_response.create(messages=messages, **params)
                self.limiter.observe(raw.headers)
                return answers_from_completion(raw.parse(), time.monotonic() - started)
            except openai.APIStatusError as error:
                self.limiter.observe(error.response.headers)
                last_error = f"HTTP {error.status_code}: {_message(error)}"
                if error.status_code not in RETRYABLE_STATUS:
                    return Failure(self.redact(last_error))
                delay = retry_after_seconds(error.response.headers)
            except openai.APITimeoutError:
                last_error = f"timed out after {self.spec.timeout_s:g} s"
            except openai.APIConnectionError as error:
                last_error = f"connection failed: {error.__cause__ or error}"
            except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError) as error:
                last_error = f"malformed response: {type(error).__name__}: {str(error)[:200]}"
            finally:
                stats.in_flight -= 1
            if attempt < self.spec.max_retries:
                await asyncio.sleep(self._backoff(attempt, delay))
        return Failure(self.redact(f"{last_error} (after {self.spec.max_retries + 1} attempts)"))

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        # Full jitter: spreads retries of many workers that failed together.
        return random.uniform(0, min(MAX_BACKOFF_S, self.spec.retry_backoff_s * 2**attempt))


def _message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(error.message)[:300]
