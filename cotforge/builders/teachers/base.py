"""What every teacher backend takes and gives: requests in, answers (or a failure) out, through a sink."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cotforge.builders.teachers.reasoning import Separated, completion_tokens, separate_message, token_count
from cotforge.safety.redact import redact_text
from cotforge.schemas.recipe import SamplingParams
from cotforge.schemas.record import TokenUsage
from cotforge.schemas.teachers import TeacherSpec


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
    # Why the response was out of shape (content or refusal not text, a choice no object): the answer is stored as
    # a rejection with this reason, so a rerun does not pay for it again.
    malformed: str | None = None


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


MAX_FINISH_REASON_CHARS = 64


def _a(value: object) -> str:
    """What a JSON value is, for a sentence: 'a list', 'an int'."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _choice_order(numbered: tuple[int, object]) -> tuple[int, int]:
    """Choices in their `index` order where it is a whole number, else as they came."""
    position, choice = numbered
    index = choice.get("index") if isinstance(choice, Mapping) else None
    return (index if isinstance(index, int) and not isinstance(index, bool) else position), position


def answers_from_completion(completion: object, latency_s: float | None) -> list[Answer]:
    """Answers from an OpenAI chat completion body (as JSON-decoded, also the form a batch output file holds). Each
    field is checked here, at the edge: a body without a list of choices is a ValueError (a broken reply, asked
    again); a choice out of shape is an answer that says why (`malformed`), and a count out of range is unknown."""
    if not isinstance(completion, Mapping) or not isinstance(completion.get("choices"), list):
        raise ValueError("not a chat completion: no 'choices' list")
    choices = [choice for _, choice in sorted(enumerate(completion["choices"]), key=_choice_order)]
    if not choices:
        return []
    usage = completion.get("usage")
    if usage is None:
        usage = {}  # no usage reported: nothing counted
    elif not isinstance(usage, Mapping):
        usage = {"prompt_tokens": None}  # unknown
    output_tokens, reasoning_tokens = completion_tokens(usage)
    share = share_usage(usage.get("prompt_tokens", 0), output_tokens, len(choices))
    reasoning_share = None if reasoning_tokens is None else round(reasoning_tokens / len(choices))
    return [
        _choice_answer(position, choice, share, latency_s, reasoning_share) for position, choice in enumerate(choices)
    ]


def _message_out_of_shape(message: object) -> str | None:
    if message is None:
        return "message: missing"
    if not isinstance(message, Mapping):
        return f"message: {_a(message)}, not an object"
    content = message.get("content")
    return None if content is None or isinstance(content, str) else f"content: {_a(content)}, not text"


def _choice_answer(
    position: int, choice: object, share: TokenUsage | None, latency_s: float | None, reasoning_tokens: int | None
) -> Answer:
    if not isinstance(choice, Mapping):
        why = f"choice {position}: {_a(choice)}, not an object"
        return traced_answer(Separated(None, None), None, share, latency_s, malformed=why)
    message = choice.get("message")
    why = _message_out_of_shape(message)
    if why is not None or not isinstance(message, Mapping):
        return traced_answer(Separated(None, None), choice.get("finish_reason"), share, latency_s, malformed=why)
    return traced_answer(
        separate_message(message),
        choice.get("finish_reason"),
        share,
        latency_s,
        refusal=message.get("refusal"),
        reasoning_tokens=reasoning_tokens,
    )


def traced_answer(
    separated: Separated,
    finish_reason: object,
    usage: TokenUsage | None,
    latency_s: float | None,
    refusal: object = None,
    reasoning_tokens: int | None = None,
    malformed: str | None = None,
) -> Answer:
    """An answer whose trace, if any, is already apart from its text; every backend makes its answers here, so a
    finish reason that is no short text is unknown and a refusal that is not text makes the answer malformed."""
    if refusal is not None and not isinstance(refusal, str):
        malformed = malformed or f"refusal: {_a(refusal)}, not text"
        refusal = None
    finish = finish_reason if isinstance(finish_reason, str) and len(finish_reason) <= MAX_FINISH_REASON_CHARS else None
    return Answer(
        separated.text,
        finish,
        usage,
        latency_s,
        refusal,
        reasoning=separated.reasoning,
        reasoning_open=separated.open,
        reasoning_tokens=reasoning_tokens,
        malformed=malformed,
    )


class SecretRedactor:
    """Removes the teacher's API key, and anything shaped like a key, from text bound for logs and records."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_text(text)


class TeacherError(RuntimeError):
    """A teacher that cannot start or whose engine died; answers stored before it stay stored. `usage`: the
    user's setup is at fault (a missing package), not a service."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage
