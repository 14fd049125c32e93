"""What every teacher backend takes and gives: requests in, answers (or a failure) out, through a sink."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cotforge.builders.teachers.reasoning import Separated, completion_tokens, separate_message, token_count
from cotforge.safety.redact import redact_text
from cotforge.schemas.recipe import RemoteTeacherBase, SamplingParams, TeacherSpec
from cotforge.schemas.record import TokenUsage


@dataclass(frozen=True)
class TeacherRequest:
    """One chat to send, asking for `n` answers. `id` is unique within a build (the first answer's key)."""

    id: str
    messages: list[dict[str, str]]
    n: int


@dataclass(frozen=True)
class Answer:
    text: str | None
    finish_reason: str | None
    usage: TokenUsage | None  # this answer's share of the request's tokens; None where the server's is nonsense
    latency_s: float | None  # this request's own, or None where unknown (a batch)
    refusal: str | None = None
    # A reasoning teacher's trace, apart from `text` (the answer after it); `reasoning_open`: it never closed.
    reasoning: str | None = None
    reasoning_open: bool = False
    reasoning_tokens: int | None = None  # this answer's share, where the server reports it


@dataclass(frozen=True)
class Failure:
    """A request that got no answer after every retry; `detail` is free of secrets. `fatal`: every other request
    would fail the same way (a refused key, an unknown model, a server that cannot be reached), so a run of them
    stops the build instead of spending every retry on every request."""

    detail: str
    fatal: bool = False


Outcome = list[Answer] | Failure
Sink = Callable[[TeacherRequest, Outcome], None]


@dataclass
class LiveStats:
    """Shared with the progress display; the teacher keeps `in_flight` and `requests_sent` current."""

    in_flight: int = 0
    requests_sent: int = 0
    engine_start_s: float = 0.0  # loading in-process engines (vLLM), part of the run's wall time
    stop: bool = False  # set by the build (budget spent, Ctrl-C): send nothing new


class Teacher(Protocol):
    spec: TeacherSpec

    async def run(self, requests: Iterable[TeacherRequest], sink: Sink, stats: LiveStats) -> None:
        """Answer every request, calling `sink` once per request as its outcome arrives. `requests` may be a
        generator that makes each request as it is taken."""


def chat_params(spec: TeacherSpec, sampling: SamplingParams, n: int) -> dict[str, Any]:
    """The body of a chat completion request, minus the messages: what the model's family takes (no temperature
    or top_p for reasoning models that refuse them, their own name for the token budget), then the teacher's
    reasoning_effort and extra_body."""
    capabilities = spec.model_capabilities
    params: dict[str, Any] = {"model": spec.model, "n": n}
    if capabilities.sampling:
        params |= {"temperature": sampling.temperature, "top_p": sampling.top_p}
    params[capabilities.token_limit] = sampling.max_tokens
    if sampling.seed is not None:
        params["seed"] = sampling.seed
    if spec.reasoning_effort is not None:
        params["reasoning_effort"] = spec.reasoning_effort
    return params | spec.extra_body


def share_usage(prompt_tokens: object, completion_tokens: object, n: int) -> TokenUsage | None:
    """One answer's share when a request returns `n` answers (the API reports only totals); None (unknown) when
    the server's counts are not whole numbers of zero or more: the answer is still good, so it is not asked again."""
    prompt, completion = token_count(prompt_tokens), token_count(completion_tokens)
    if prompt is None or completion is None:
        return None
    return TokenUsage(prompt_tokens=round(prompt / n), completion_tokens=round(completion / n))


def answers_from_completion(completion: dict[str, Any], latency_s: float | None) -> list[Answer]:
    """Answers from an OpenAI chat completion body (as JSON-decoded, also the form a batch output file holds)."""
    if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
        raise ValueError("not a chat completion: no 'choices' list")
    choices = sorted(completion["choices"], key=lambda c: c.get("index", 0))
    if not choices:
        return []
    usage = completion.get("usage") or {}
    if not isinstance(usage, dict):
        usage = {"prompt_tokens": None}
    output_tokens, reasoning_tokens = completion_tokens(usage)
    share = share_usage(usage.get("prompt_tokens", 0), output_tokens, len(choices))
    answers = []
    for choice in choices:
        message = choice.get("message") or {}
        answers.append(
            traced_answer(
                separate_message(message),
                choice.get("finish_reason"),
                share,
                latency_s,
                refusal=message.get("refusal"),
                reasoning_tokens=None if reasoning_tokens is None else round(reasoning_tokens / len(choices)),
            )
        )
    return answers


def traced_answer(
    separated: Separated,
    finish_reason: str | None,
    usage: TokenUsage | None,
    latency_s: float | None,
    refusal: str | None = None,
    reasoning_tokens: int | None = None,
) -> Answer:
    """An answer whose trace, if any, is already apart from its text."""
    return Answer(
        separated.text,
        finish_reason,
        usage,
        latency_s,
        refusal,
        reasoning=separated.reasoning,
        reasoning_open=separated.open,
        reasoning_tokens=reasoning_tokens,
    )


class SecretRedactor:
    """Removes the teacher's API key, and anything shaped like a key, from text bound for logs and records."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_text(text)


class MissingApiKey(RuntimeError):
    pass


class TeacherError(RuntimeError):
    """A teacher that cannot start or whose engine died; answers stored before it stay stored. `usage`: the
    user's setup is at fault (a missing package), not a service."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def api_key_for(spec: RemoteTeacherBase) -> str:
    """The key from the environment variable the spec names. Local servers (a base_url) may run without one."""
    key = os.environ.get(spec.api_key_env, "")
    if key:
        return key
    if spec.base_url is not None:
        return "EMPTY"  # vllm serve and llama.cpp accept any key unless started with one
    raise MissingApiKey(f"teacher {spec.label}: set the {spec.api_key_env} environment variable to an OpenAI API key")
