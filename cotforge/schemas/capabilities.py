"""What a teacher model takes, by model family: reasoning models refuse some chat parameters and want others.

OpenAI's o-series and gpt-5 reasoning models refuse `temperature`/`top_p` (only the default is allowed), want
`max_completion_tokens` in place of `max_tokens` (which counts the hidden trace too) and take `reasoning_effort`.
A family is matched on the model id's last path segment, so dated snapshots (`o3-2025-04-16`) and routed names
(`openai/o4-mini`) find theirs; a recipe overrides any entry per teacher (`capabilities:`). An unknown model is
sent what any OpenAI-compatible server takes, and its `reasoning_effort`, if given, is passed on unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

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
