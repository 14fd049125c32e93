"""The OpenAI chat completions API, or any OpenAI-compatible server (vllm serve, llama.cpp, hosted providers).

Requests go out over one aiohttp session speaking the chat completions wire protocol directly. The openai SDK
(used for the Batch API) spends several milliseconds of CPU per request building and parsing typed objects; on
a small machine that, not the server, caps a build at a few hundred requests per second (BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp

from cotforge.builders.store import Store
from cotforge.builders.teachers.base import (
    Answer,
    Failure,
    LiveStats,
    Outcome,
    SecretRedactor,
    Sink,
    TeacherRequest,
    answers_from_completion,
    chat_params,
)
from cotforge.builders.teachers.ratelimit import AdaptiveConcurrency, RateLimiter, retry_after_seconds
from cotforge.schemas.recipe import SamplingParams
from cotforge.schemas.teachers import OpenAITeacherSpec, RemoteTeacherBase

OPENAI_BASE_URL = "https://api.openai.com/v1"
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
# Refused key, no access, unknown model or endpoint: every other request would get the same answer.
FATAL_STATUS = {401, 403, 404}
# A server that refuses connections is tried this many times more, not max_retries: it is down, not busy.
CONNECT_RETRIES = 2
MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 300.0
_CHARS_PER_TOKEN = 4


class OpenAITeacher:
    """Adaptive concurrency, RPM/TPM limits, retries with jittered exponential backoff that honour Retry-After.
    Another HTTP API's client subclasses it for its wire format: URL, headers, body and reading the reply."""

    default_base_url = OPENAI_BASE_URL
    base_url_variable = "OPENAI_BASE_URL"
    path = "/chat/completions"
    retryable_status = RETRYABLE_STATUS
    most_answers_per_request: int | None = None  # None: a request asks for all `n` at once

    def __init__(self, spec: RemoteTeacherBase, sampling: SamplingParams) -> None:
        self.spec = spec
        self.sampling = sampling
        key = spec.api_key()
        self.redact = SecretRedactor([key])
        self.base_url = (spec.base_url or os.environ.get(self.base_url_variable) or self.default_base_url).rstrip("/")
        self.url = self.base_url + self.path
        self.headers = self.request_headers(key)
        self.limiter = RateLimiter(spec.rpm, spec.tpm)
        self.window = AdaptiveConcurrency(spec.max_concurrency)

    @classmethod
    def for_build(cls, spec: OpenAITeacherSpec, sampling: SamplingParams, store: Store | None) -> OpenAITeacher:
        return cls(spec, sampling)

    def request_headers(self, key: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        # The same optional headers the openai SDK sends from the environment.
        for variable, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if os.environ.get(variable):
                headers[header] = os.environ[variable]
        return headers

    def request_body(self, messages: list[dict[str, str]], n: int) -> dict[str, Any]:
        return {"messages": messages, **chat_params(self.spec, self.sampling, n)}

    def answers_from(self, reply: object, latency_s: float) -> list[Answer]:
        """The answers in a decoded 200 reply; a ValueError (or TypeError, KeyError) where it is no reply at all."""
        return answers_from_completion(reply, latency_s)

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session `answer` sends on: one connection per request the spec lets be in flight."""
        connector = aiohttp.TCPConnector(limit=self.spec.max_concurrency, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=self.spec.timeout_s)
        return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self.headers)

    async def run(self, requests: Iterable[TeacherRequest], sink: Sink, stats: LiveStats) -> None:
        queue = iter(requests)
        workers = self.spec.max_concurrency  # a worker with nothing left to take ends at once
        async with self.session() as session:

            async def worker() -> None:
                for request in queue:  # workers share one iterator: each request goes to exactly one worker
                    if stats.stop:
                        return
                    sink(request, await self.answer(session, request, stats))

            await asyncio.gather(*(worker() for _ in range(workers)))

    async def answer(self, session: aiohttp.ClientSession, request: TeacherRequest, stats: LiveStats) -> Outcome:
        """All `request.n` answers; servers that return fewer choices than asked are asked again for the rest."""
        answers: list[Answer] = []
        while len(answers) < request.n:
            asked = request.n - len(answers)
            got = await self._call(session, request.messages, min(asked, self.most_answers_per_request or asked), stats)
            if isinstance(got, Failure):
                return answers or got  # keep what was paid for; the build marks the rest failed
            if not got:
                return answers or Failure("the server returned no choices")
            answers.extend(got)
        return answers[: request.n]

    async def _call(
        self, session: aiohttp.ClientSession, messages: list[dict[str, str]], n: int, stats: LiveStats
    ) -> list[Answer] | Failure:
        prompt_chars = sum(len(m["content"]) for m in messages)
        tokens = prompt_chars // _CHARS_PER_TOKEN + self.sampling.max_tokens * n
        body = json.dumps(self.request_body(messages, n))
        last_error = ""
        retries = self.spec.max_retries
        attempt = 0
        while True:
            await self.limiter.acquire(tokens)
            retry_after = None
            timed_out = unreachable = False
            started = await self.window.acquire()
            stats.in_flight += 1
            stats.requests_sent += 1
            try:
                async with session.post(self.url, data=body) as response:
                    self.limiter.observe(response.headers)
                    payload = await response.read()
                    if response.status == 200:
                        return self.answers_from(json.loads(payload), time.monotonic() - started)
                    last_error = f"HTTP {response.status}: {_error_message(payload)}"
                    if response.status not in self.retryable_status:
                        return Failure(self.redact(last_error), fatal=response.status in FATAL_STATUS)
                    retry_after = retry_after_seconds(response.headers)
            except asyncio.TimeoutError:
                timed_out = True
                last_error = f"timed out after {self.spec.timeout_s:g} s"
            except aiohttp.ClientConnectorError as error:
                unreachable = True
                retries = min(retries, CONNECT_RETRIES)
                last_error = f"cannot connect to {self.base_url}: {error.strerror or error}"
            except aiohttp.ClientError as error:
                last_error = f"connection failed: {type(error).__name__}: {error}"
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                last_error = f"malformed response: {type(error).__name__}: {str(error)[:200]}"
            finally:
                stats.in_flight -= 1
                await self.window.release(started, timed_out)
            if attempt >= retries or stats.stop:  # stopping: what is left is asked again on the next run
                break
            await asyncio.sleep(self._backoff(attempt, retry_after))
            attempt += 1
        # Only a server still refusing connections at the last attempt is fatal; a busy one is not.
        return Failure(self.redact(f"{last_error} (after {attempt + 1} attempts)"), fatal=unreachable)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        # Full jitter: spreads retries of many workers that failed together.
        return random.uniform(0, min(MAX_BACKOFF_S, self.spec.retry_backoff_s * 2**attempt))


def _error_message(payload: bytes) -> str:
    try:
        body = json.loads(payload)
    except ValueError:
        return payload[:300].decode("utf-8", "replace")
    inner = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(inner, Mapping) and inner.get("message"):
        return str(inner["message"])[:300]
    return str(inner)[:300]
