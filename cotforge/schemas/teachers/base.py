"""What every teacher backend's settings have; each backend's own class (one file each, listed in
cotforge.schemas.teachers) adds only the options that backend takes, its list price, its API-key rule and what its
requests can carry, and names its client in cotforge.builders.teachers."""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from cotforge.safety.names import safe_name
from cotforge.safety.redact import redact_url
from cotforge.schemas.capabilities import (
    Capabilities,
    CapabilityOverrides,
    ReasoningEffort,
    capabilities_of,
    check_reasoning_options,
)

DEFAULT_BACKEND = "openai"  # a teacher given without `backend` (and a bare model name on the command line)
_LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def teacher_label(model: str) -> str:
    """A subset-safe label for a model id: 'Qwen/Qwen2.5-7B-Instruct' -> 'qwen2.5-7b-instruct'."""
    label = re.sub(r"[^a-z0-9._-]+", "-", model.rsplit("/", 1)[-1].lower()).strip("-._")
    return label or "teacher"


def list_price(model: str, prices: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    """A model's (input, output) USD per million tokens from a backend's table: dated snapshots
    ("gpt-4o-2024-08-06") cost what their family costs, and the longest matching name wins."""
    family = max((name for name in prices if model == name or model.startswith(name + "-")), key=len, default=None)
    return None if family is None else prices[family]


class MissingApiKey(RuntimeError):
    pass


class TeacherBase(BaseModel):
    """What every teacher has. A backend's class declares `backend: Literal["<name>"] = "<name>"` and `client`, the
    "module:Class" of its client (the layers keep clients above this module, so it is named, not imported)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client: ClassVar[str]
    # Why reasoning_effort cannot be sent (None: it can); the extra_body keys it takes (None: any).
    effort_refusal: ClassVar[str | None] = None
    extra_body_keys: ClassVar[tuple[str, ...] | None] = None
    # Whether its requests take OpenAI's response_format (a judge's verdict schema); else the schema is in the prompt.
    takes_response_format: ClassVar[bool] = False

    model: str = Field(min_length=1)
    backend: str
    label: str = Field(default="", description="Name used in subsets; defaults to the model's short name.")
    input_price_per_mtok: float | None = Field(default=None, ge=0, description="Overrides the built-in price table")
    output_price_per_mtok: float | None = Field(default=None, ge=0)
    # ---- reasoning teachers (cotforge.schemas.capabilities)
    reasoning_effort: ReasoningEffort | None = Field(
        default=None, description="Sent as reasoning_effort (o-series, gpt-5, servers that take it)"
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="Keys added to each chat request as given, e.g. chat_template_kwargs: {enable_thinking: true}",
    )
    capabilities: CapabilityOverrides | None = Field(
        default=None, description="Corrections to the model family table: sampling, token_limit, efforts, reasoning"
    )

    @classmethod
    def backend_name(cls) -> str:
        return str(cls.model_fields["backend"].default)

    @model_validator(mode="before")
    @classmethod
    def _only_own_options(cls, data: Any) -> Any:
        if isinstance(data, dict):
            misplaced = [key for key in data if key not in cls.model_fields]
            if misplaced:
                where = "; ".join(hint for hint in dict.fromkeys(map(_where_it_belongs, misplaced)) if hint)
                raise ValueError(
                    f"{', '.join(misplaced)}: not an option of {_a(cls.backend_name())} teacher"
                    + (f" ({where})" if where else "")
                )
        return data

    @model_validator(mode="after")
    def _default_label(self) -> TeacherBase:
        if not self.label:
            object.__setattr__(self, "label", teacher_label(self.model))
        elif not _LABEL.match(self.label):
            raise ValueError(f"label {self.label!r} must be lower-case letters, digits, '.', '_' or '-'")
        safe_name(self.label, "label")
        return self

    @model_validator(mode="after")
    def _reasoning_options(self) -> TeacherBase:
        check_reasoning_options(
            self.model,
            self.backend,
            self.reasoning_effort,
            self.extra_body,
            self.model_capabilities,
            self.effort_refusal,
            self.extra_body_keys,
        )
        return self

    @property
    def model_capabilities(self) -> Capabilities:
        return capabilities_of(self.model, self.capabilities)

    def reasoning_identity(self) -> dict[str, Any]:
        """The reasoning options this teacher sets (they change its answers); empty for a plain teacher, so the
        keys and identities of recipes without them stay what they were."""
        given = {"reasoning_effort": self.reasoning_effort, "extra_body": self.extra_body}
        if self.capabilities is not None:
            given["capabilities"] = self.capabilities.model_dump(mode="json", exclude_none=True)
        return {name: value for name, value in given.items() if value}

    @property
    def endpoint(self) -> str | None:
        """The server a remote teacher talks to; None for a provider's own API and for engines cotforge starts."""
        return None

    def list_price(self) -> tuple[float, float] | None:
        """(input, output) USD per million tokens before the recipe's overrides; None: no list price (a model
        cotforge runs itself, a self-hosted server, a model the table does not know)."""
        return None

    def api_key(self) -> str | None:
        """The key the client sends, or None where none is needed; MissingApiKey names the variable to set."""
        return None

    @model_serializer(mode="wrap")
    def _backend_named(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """`backend` chooses the member, so a dump without defaults still names it (the default backend apart)."""
        data = handler(self)
        if isinstance(data, dict) and "backend" not in data and self.backend != DEFAULT_BACKEND:
            data["backend"] = self.backend
        return data


class RemoteTeacherBase(TeacherBase):
    """A teacher behind an HTTP API, or any compatible server with `base_url`. The API key is read from
    `api_key_env` at run time, never stored."""

    key_kind: ClassVar[str] = "an OpenAI API key"  # what the missing variable should hold, for the sentence

    base_url: str | None = Field(default=None, description="An OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = Field(default=64, gt=0, le=4096)
    rpm: int | None = Field(default=None, gt=0, description="Requests per minute; default: from response headers")
    tpm: int | None = Field(default=None, gt=0, description="Tokens per minute; default: from response headers")
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=50)
    retry_backoff_s: float = Field(default=1.0, gt=0, description="First backoff; doubles per retry, with jitter")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/:]+(:\d+)?(/\S*)?$", value):
            raise ValueError(f"{redact_url(value)!r} is not an http(s) URL such as http://127.0.0.1:8000/v1")
        return value

    @property
    def endpoint(self) -> str | None:
        return self.base_url

    def api_key(self) -> str:
        """The key from the environment variable the spec names. Local servers (a base_url) may run without one."""
        key = os.environ.get(self.api_key_env, "")
        if key:
            return key
        if self.base_url is not None:
            return "EMPTY"  # vllm serve and llama.cpp accept any key unless started with one
        raise MissingApiKey(f"teacher {self.label}: set the {self.api_key_env} environment variable to {self.key_kind}")


def _backend_classes() -> list[type[TeacherBase]]:
    """Every backend's class: each subclass that names its client."""
    found: list[type[TeacherBase]] = []
    pending: list[type[TeacherBase]] = [TeacherBase]
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        if "client" in vars(cls):
            found.append(cls)
    return found


def _backends_with(option: str) -> list[str]:
    return sorted({cls.backend_name() for cls in _backend_classes() if option in cls.model_fields})


def _where_it_belongs(option: str) -> str:
    """Where an option given to the wrong backend belongs: another backend's own option, or a field of one of
    another backend's groups of settings (vLLM's engine arguments)."""
    if option in TeacherBase.model_fields:
        return ""
    owners = _backends_with(option)
    if owners:
        return f"{_joined(owners)} teachers only"
    for cls in _backend_classes():
        for name, field in cls.model_fields.items():
            group = field.annotation
            own = name not in TeacherBase.model_fields  # not `capabilities`: every teacher has it
            if own and isinstance(group, type) and issubclass(group, BaseModel) and option in group.model_fields:
                return f"give it in {name}, to {_a(_joined(_backends_with(name), 'or'))} teacher"
    return ""


def _joined(names: list[str], conjunction: str = "and") -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def _a(phrase: str) -> str:
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"
