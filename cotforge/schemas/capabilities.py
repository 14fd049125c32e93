"""What a teacher model takes, by model family: reasoning models refuse some chat parameters and want others.

OpenAI's o-series and gpt-5 reasoning models refuse `temperature`/`top_p` (only the default is allowed), want
`max_completion_tokens` in place of `max_tokens` (which counts the hidden trace too) and take `reasoning_effort`.
A family is matched on the model id's last path segment, so dated snapshots (`o3-2025-04-16`) and routed names
(`openai/o4-mini`) find theirs; a recipe overrides any entry per teacher (`capabilities:`). An unknown model is
sent what any OpenAI-compatible server takes, and its `reasoning_effort`, if given, is passed on unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ReasoningEffort = Literal["minimal", "low", "medium", "high"]
TokenLimitField = Literal["max_tokens", "max_completion_tokens"]


@dataclass(frozen=True)
class Capabilities:
    """`sampling`: takes temperature and top_p; `token_limit`: the name of the output budget; `efforts`: the
    reasoning_effort values it takes (None: unknown, passed on unchecked); `reasoning`: it writes a trace before
    its answer (the dry run's estimate adds one)."""

    sampling: bool = True
    token_limit: TokenLimitField = "max_tokens"
    efforts: tuple[str, ...] | None = None
    reasoning: bool = False


_CHAT = Capabilities(efforts=())
_O_SERIES = Capabilities(
    sampling=False, token_limit="max_completion_tokens", efforts=("low", "medium", "high"), reasoning=True
)
_OPEN_WEIGHTS_REASONER = Capabilities(reasoning=True)
FAMILIES: dict[str, Capabilities] = {
    "gpt-3.5-turbo": _CHAT,
    "gpt-4-turbo": _CHAT,
    "gpt-4o": _CHAT,
    "gpt-4.1": _CHAT,
    "o1": _O_SERIES,
    "o1-mini": replace(_O_SERIES, efforts=()),
    "o1-preview": replace(_O_SERIES, efforts=()),
    "o3": _O_SERIES,
    "o3-mini": _O_SERIES,
    "o3-pro": _O_SERIES,
    "o4-mini": _O_SERIES,
    "gpt-5": replace(_O_SERIES, efforts=("minimal", "low", "medium", "high")),
    "gpt-5-chat": replace(_CHAT, token_limit="max_completion_tokens"),  # gpt-5's non-reasoning chat model
    "deepseek-reasoner": _OPEN_WEIGHTS_REASONER,
    "deepseek-r1": _OPEN_WEIGHTS_REASONER,
    "qwq": _OPEN_WEIGHTS_REASONER,
}


class CapabilityOverrides(BaseModel):
    """A recipe's corrections to the family table for one teacher; each field left out keeps the table's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sampling: bool | None = Field(default=None, description="The model takes temperature and top_p")
    token_limit: TokenLimitField | None = Field(default=None, description="max_tokens or max_completion_tokens")
    efforts: list[ReasoningEffort] | None = Field(default=None, description="reasoning_effort values it takes")
    reasoning: bool | None = Field(default=None, description="It writes a trace before its answer")


def family_of(model: str) -> str | None:
    """The longest family name that the model's id is, or begins with followed by '-'."""
    name = model.rsplit("/", 1)[-1].lower()
    return max((f for f in FAMILIES if name == f or name.startswith(f + "-")), key=len, default=None)


def capabilities_of(model: str, overrides: CapabilityOverrides | None = None) -> Capabilities:
    family = family_of(model)
    found = FAMILIES[family] if family is not None else Capabilities()
    if overrides is None:
        return found
    given = overrides.model_dump(exclude_none=True)
    if "efforts" in given:
        given["efforts"] = tuple(given["efforts"])
    return replace(found, **given)


# ---- reasoning teachers: combinations a model cannot take, refused before anything is sent ----

# Request fields cotforge sets itself; extra_body may not set them a second time.
_OWN_REQUEST_FIELDS = (
    "model", "messages", "n", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "reasoning_effort"
)  # fmt: skip


def check_reasoning_options(
    model: str,
    backend: str,
    effort: str | None,
    extra_body: dict[str, Any],
    caps: Capabilities,
    effort_refusal: str | None,
    extra_body_keys: tuple[str, ...] | None,
) -> None:
    """reasoning_effort and extra_body that a teacher's model or backend cannot take (the backend's
    `effort_refusal` says why it sends no reasoning_effort; `extra_body_keys`, where not None, are all the keys its
    requests take): a ValueError naming the field."""
    if effort is not None:
        if effort_refusal is not None:
            raise ValueError(f"reasoning_effort: the {backend} backend has no such parameter; {effort_refusal}")
        if caps.efforts is not None and effort not in caps.efforts:
            takes = f"takes {', '.join(caps.efforts)}" if caps.efforts else "takes no reasoning_effort"
            raise ValueError(f"reasoning_effort: {effort!r}: {model} {takes} (or set capabilities.efforts)")
    for key in extra_body:
        if key in _OWN_REQUEST_FIELDS:
            raise ValueError(f"extra_body.{key}: cotforge sets {key} itself (from sampling or the teacher's fields)")
        if extra_body_keys is not None and key not in extra_body_keys:
            allowed = ", ".join(extra_body_keys) or "nothing"
            raise ValueError(f"extra_body.{key}: the {backend} backend takes {allowed} in extra_body")
