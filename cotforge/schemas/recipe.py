"""Recipe: what to build. Every field a user can set in YAML or on the command line lives here."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    Tag,
    TypeAdapter,
    field_validator,
    model_serializer,
    model_validator,
)

from cotforge.answers import AnswerType
from cotforge.safety.names import safe_name
from cotforge.safety.redact import redact_url
from cotforge.schemas.capabilities import (
    Capabilities,
    CapabilityOverrides,
    ReasoningEffort,
    capabilities_of,
    check_reasoning_options,
)
from cotforge.schemas.guides import CustomGuides

# The built-in data sets (cotforge.recipes.sources.builtin loads them; a test keeps the two lists equal).
BUILTIN_DATASETS = ("gsm8k", "svamp", "aqua", "math", "csqa", "obqa", "strategyqa")
Granularity = Annotated[int, Field(ge=0, le=6, description="0 = answer only, 1 = terse ... 6 = every step explained")]
_LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class CoTFormat(str, Enum):
    cot = "cot"
    subquestions = "subquestions"
    rar = "rar"
    symbolic = "symbolic"


class PromptMode(str, Enum):
    """blind: the teacher solves the problem; gold_hinted: it is shown the gold answer and explains the way there."""

    blind = "blind"
    gold_hinted = "gold_hinted"
    unknown = "unknown"  # imported data whose prompts are not known


class FormatMode(str, Enum):
    """direct: each format is generated from the question; rewrite: the plain CoT of the same level is rewritten;
    native (records only, asked with the recipe's `native`): a reasoning teacher's own trace is the CoT; condensed
    (records only, asked with the recipe's `condensed`): that trace rewritten at a level."""

    direct = "direct"
    rewrite = "rewrite"
    native = "native"
    condensed = "condensed"

    @property
    def derived(self) -> bool:
        """Asked once another answer of the same problem is stored, with that answer pasted into the prompt."""
        return self in (FormatMode.rewrite, FormatMode.condensed)


class TeacherBackend(str, Enum):
    openai = "openai"
    openai_batch = "openai-batch"
    vllm = "vllm"
    ray = "ray"

    @property
    def in_process(self) -> bool:
        """Engines cotforge starts itself (vLLM, here or on a Ray cluster): no API key, no list price."""
        return self in (TeacherBackend.vllm, TeacherBackend.ray)


def teacher_label(model: str) -> str:
    """A subset-safe label for a model id: 'Qwen/Qwen2.5-7B-Instruct' -> 'qwen2.5-7b-instruct'."""
    label = re.sub(r"[^a-z0-9._-]+", "-", model.rsplit("/", 1)[-1].lower()).strip("-._")
    return label or "teacher"


class VLLMEngineArgs(BaseModel):
    """vLLM's engine arguments, passed to `vllm.LLM` as given. Those cotforge knows are checked here; any other is
    checked against vllm.EngineArgs when the engine starts, so a typo is an error, not ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    max_model_len: int | None = Field(default=None, gt=0)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] | None = None
    enforce_eager: bool | None = None
    max_num_batched_tokens: int | None = Field(default=None, gt=0)
    max_num_seqs: int | None = Field(default=None, gt=0)
    tensor_parallel_size: int | None = Field(default=None, gt=0)
    data_parallel_size: int | None = Field(default=None, gt=0)
    pipeline_parallel_size: int | None = Field(default=None, gt=0)
    enable_prefix_caching: bool | None = None
    seed: int | None = None

    def given(self) -> dict[str, Any]:
        """The arguments the user set, as vLLM takes them."""
        return self.model_dump(exclude_none=True)


class RayOptions(BaseModel):
    """ray backend only: how Ray Data's LLM batch processor runs the teacher (vLLM engines as Ray actors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    replicas: int = Field(default=1, gt=0, description="vLLM engines, each a Ray actor with its own GPUs")
    batch_size: int = Field(default=32, gt=0, description="Prompts per batch sent to an engine")
    address: str | None = Field(
        default=None, description="A running Ray cluster, e.g. ray://head:10001; default: RAY_ADDRESS, else a local one"
    )


class TeacherBase(BaseModel):
    """What every teacher has. Each backend's member below adds only the options that backend takes, so an option
    given to the wrong backend is an error naming it, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    backend: TeacherBackend
    label: str = Field(default="", description="Name used in subsets; defaults to the model's short name.")
    input_price_per_mtok: float | None = Field(default=None, ge=0, description="Overrides the built-in price table")
    output_price_per_mtok: float | None = Field(default=None, ge=0)
    # ---- reasoning teachers (cotforge.schemas.capabilities); check_reasoning_options says what each backend takes
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

    @model_validator(mode="before")
    @classmethod
    def _only_own_options(cls, data: Any) -> Any:
        if isinstance(data, dict):
            misplaced = [key for key in data if key not in cls.model_fields]
            if misplaced:
                backend = TeacherBackend(data.get("backend", TeacherBackend.openai)).value
                hints = [_WHERE_IT_BELONGS.get(key, "") for key in misplaced]
                where = "; ".join(hint for hint in dict.fromkeys(hints) if hint)
                article = "an" if backend[0] in "aeiou" else "a"
                raise ValueError(
                    f"{', '.join(misplaced)}: not an option of {article} {backend} teacher"
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
        backend = self.backend
        check_reasoning_options(
            self.model,
            backend.value,
            backend.in_process,
            self.reasoning_effort,
            self.extra_body,
            self.model_capabilities,
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
        """The server a remote teacher talks to; None for the OpenAI API and for engines cotforge starts itself."""
        return None

    @model_serializer(mode="wrap")
    def _backend_named(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """`backend` chooses the member, so a dump without defaults still names it (openai, the default, apart)."""
        data = handler(self)
        if isinstance(data, dict) and "backend" not in data and self.backend is not TeacherBackend.openai:
            data["backend"] = self.backend.value if info.mode == "json" else self.backend
        return data


class RemoteTeacherBase(TeacherBase):
    """A teacher behind an HTTP API: the OpenAI API, or any OpenAI-compatible server with `base_url`. The API key is
    read from `api_key_env` at run time, never stored."""

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


class OpenAITeacherSpec(RemoteTeacherBase):
    """Chat completions, one request per prompt, as many in flight as the server takes."""

    backend: Literal[TeacherBackend.openai] = TeacherBackend.openai


class OpenAIBatchTeacherSpec(RemoteTeacherBase):
    """The OpenAI Batch API: half the price, answers within a day; batch ids are stored, so a killed run resumes."""

    backend: Literal[TeacherBackend.openai_batch] = TeacherBackend.openai_batch
    batch_poll_s: float = Field(default=30.0, gt=0, description="Seconds between polls of a batch")


class VLLMTeacherSpec(TeacherBase):
    """vLLM in this process, on this machine's GPUs (or CPU build)."""

    backend: Literal[TeacherBackend.vllm] = TeacherBackend.vllm
    engine_args: VLLMEngineArgs = Field(
        default_factory=lambda: VLLMEngineArgs(),
        description="vLLM's engine arguments (vllm.EngineArgs), tensor_parallel_size among them, passed to vLLM",
    )


class RayTeacherSpec(VLLMTeacherSpec):
    """vLLM engines as Ray actors, through Ray Data's LLM batch processor."""

    backend: Literal[TeacherBackend.ray] = TeacherBackend.ray  # type: ignore[assignment]
    ray: RayOptions = Field(default_factory=lambda: RayOptions(), description="How Ray runs the engines")


_WHERE_IT_BELONGS = {
    **{
        name: "an engine argument: give it in engine_args, to a vllm or ray teacher"
        for name in VLLMEngineArgs.model_fields
    },
    "engine_args": "vllm and ray teachers only",
    "ray": "ray teachers only",
    "batch_poll_s": "openai-batch teachers only",
    **{
        name: "openai and openai-batch teachers only"
        for name in ("base_url", "api_key_env", "max_concurrency", "rpm", "tpm", "timeout_s", "max_retries")
    },
    "retry_backoff_s": "openai and openai-batch teachers only",
}


def _backend_of(value: Any) -> str:
    backend = value.get("backend", TeacherBackend.openai) if isinstance(value, dict) else value.backend
    return backend.value if isinstance(backend, TeacherBackend) else str(backend)


TeacherSpec = Annotated[
    Annotated[OpenAITeacherSpec, Tag(TeacherBackend.openai.value)]
    | Annotated[OpenAIBatchTeacherSpec, Tag(TeacherBackend.openai_batch.value)]
    | Annotated[VLLMTeacherSpec, Tag(TeacherBackend.vllm.value)]
    | Annotated[RayTeacherSpec, Tag(TeacherBackend.ray.value)],
    Discriminator(_backend_of),
]
"""A teacher model and how to reach it: one member per backend, chosen by `backend` (default openai)."""

TEACHER = TypeAdapter(TeacherSpec)


def parse_teacher(text: str) -> TeacherSpec:
    """'gpt-4o', 'openai:gpt-4o', 'openai-batch:gpt-4o', 'vllm:Qwen/Qwen2.5-7B-Instruct' or 'ray:Qwen/...'."""
    backend, sep, model = text.partition(":")
    if sep and backend in {b.value for b in TeacherBackend}:
        return TEACHER.validate_python({"model": model, "backend": backend})
    return TEACHER.validate_python({"model": text})


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(default=0.7, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=1024, gt=0)
    n: int = Field(default=1, gt=0, le=128, description="Answers per prompt")
    seed: int | None = None


class SourceSpec(BaseModel):
    """Where problems come from: a built-in data set by name, any Hub data set, or a local file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str | None = Field(default=None, description="Built-in: gsm8k, svamp, aqua, math, csqa, obqa, strategyqa")
    hub_id: str | None = None
    path: str | None = Field(default=None, description="Local .jsonl, .json, .parquet or .csv file")
    name: str | None = Field(default=None, description="Data set name in records; defaults to the source's name")
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Column mapping for hub_id/path: question, answer, id, choices, rationale",
    )
    answer_type: AnswerType | None = Field(default=None, description="Required for hub_id/path sources")

    @field_validator("name")
    @classmethod
    def _file_name(cls, value: str | None) -> str | None:
        return None if value is None else safe_name(value)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: object) -> object:
        return {"dataset": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_origin(self) -> SourceSpec:
        origins = [f for f in ("dataset", "hub_id", "path") if getattr(self, f)]
        if len(origins) != 1:
            raise ValueError("give exactly one of dataset, hub_id or path")
        if self.dataset is not None:
            if self.dataset not in BUILTIN_DATASETS:
                raise ValueError(f"unknown dataset {self.dataset!r}; built-in: {', '.join(BUILTIN_DATASETS)}")
        else:
            if self.answer_type is None:
                raise ValueError("answer_type is required for a hub_id or path source")
            unknown = set(self.fields) - {"question", "answer", "id", "choices", "rationale"}
            if unknown:
                raise ValueError(f"unknown field mapping keys: {', '.join(sorted(unknown))}")
        safe_name(self.display_name, "name")  # records carry it as their data set: part of file names
        return self

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.dataset:
            return self.dataset
        origin = self.hub_id or self.path or "data"
        return teacher_label(origin.rsplit(".", 1)[0] if self.path else origin)


class Recipe(BaseModel):
    """A whole build: sources x teachers x granularities x formats x samples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="cot-build", min_length=1)
    description: str = ""
    sources: list[SourceSpec] = Field(min_length=1)
    teachers: list[TeacherSpec] = Field(min_length=1)
    granularities: list[Granularity] = Field(default=[5], min_length=1)
    formats: list[CoTFormat] = Field(default=[CoTFormat.cot], min_length=1)
    format_mode: FormatMode = FormatMode.direct
    prompt_mode: PromptMode = PromptMode.blind
    sampling: SamplingParams = SamplingParams()
    limit: int | None = Field(default=None, gt=0, description="Use only the first N problems of each source")
    keep: Literal["all", "correct", "majority"] = Field(
        default="all",
        description="'correct' rejects answers that miss gold; 'majority' rejects answers that differ from their "
        "question's most common answer over its n samples (with n = 1 it keeps them all)",
    )
    max_cost_usd: float | None = Field(default=None, ge=0, description="Stop sending requests past this spend")
    # ---- top-up sampling (cotforge.builders.topup) ----
    until_correct: int | None = Field(
        default=None,
        gt=0,
        description="Ask each prompt again, one attempt a round, until this many answers are correct",
    )
    max_attempts: int | None = Field(
        default=None, gt=0, le=128, description="With until_correct: most attempts a prompt"
    )
    custom_prompt: str | None = Field(
        default=None,
        description="Set by cotforge.build(custom=...): the Python prompt every answer was asked with; only the Python "
        "API can build (or resume) such a recipe",
    )
    guides: CustomGuides | None = Field(
        default=None,
        description="Your own level guides and demonstration, inline or as the name of a YAML file next to the recipe",
    )
    max_answer_chars: int = Field(
        default=100_000, gt=0, description="A longer answer is rejected (too_long) instead of stored as a record"
    )
    # ---- reasoning teachers ----
    native: bool = Field(
        default=False,
        description="Also ask each teacher for the final answer line alone: its native reasoning trace is the CoT "
        "(subsets <teacher>-native-cot)",
    )
    condensed: list[Annotated[int, Field(ge=1, le=6)]] = Field(
        default=[],
        description="With native: also rewrite each native trace at these levels, as rewrite mode rewrites a plain "
        "CoT (subsets <teacher>-condensed-g<level>-cot)",
    )

    @field_validator("teachers", mode="before")
    @classmethod
    def _teacher_strings(cls, value: object) -> object:
        if isinstance(value, list):
            return [parse_teacher(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("name")
    @classmethod
    def _file_name(cls, value: str) -> str:
        return safe_name(value)  # the default build folder is named after it

    @field_validator("granularities", "formats", "condensed")
    @classmethod
    def _unique(cls, value: list) -> list:
        if len(set(value)) != len(value):
            raise ValueError("values must not repeat")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        labels = [t.label for t in self.teachers]
        if len(set(labels)) != len(labels):
            raise ValueError(f"teacher labels must be unique, got {labels}")
        if self.prompt_mode is PromptMode.unknown:
            raise ValueError("prompt_mode must be 'blind' or 'gold_hinted' ('unknown' is for imported data)")
        if self.format_mode is FormatMode.rewrite and CoTFormat.cot not in self.formats:
            raise ValueError("format_mode 'rewrite' rewrites the plain CoT, so formats must include 'cot'")
        if self.custom_prompt is not None and (
            len(self.formats) > 1 or self.format_mode is FormatMode.rewrite or self.guides is not None
        ):
            raise ValueError(
                "custom_prompt: a custom prompt asks one format directly; give one format, no rewrite, no guides"
            )
        if self.format_mode in (FormatMode.native, FormatMode.condensed):
            raise ValueError(
                "format_mode: 'direct' or 'rewrite'; the native arm is asked with native: true, condensed levels "
                "with condensed: [levels]"
            )
        if self.condensed and not self.native:
            raise ValueError("condensed: condensed levels rewrite the native arm's traces; set native: true too")
        if self.guides is not None:
            self.guides.check_asked(self.granularities, self.native, self.format_mode is FormatMode.rewrite)
        check_sampling_taken(self.teachers, self.sampling)
        self._check_top_up()
        return self

    def _check_top_up(self) -> None:
        k, cap = self.until_correct, self.max_attempts
        derived = self.keep == "majority" or self.format_mode is FormatMode.rewrite or self.native
        for found, message in (
            (k is None and cap is not None, "max_attempts: set until_correct too; it caps until_correct's attempts"),
            (k is not None and (cap is None or cap < k), "until_correct: give max_attempts, at least until_correct"),
            (
                k is not None and self.sampling.n != 1,
                "until_correct: each attempt is one answer; leave sampling.n at 1",
            ),
            (k is not None and derived, "until_correct: asks directly; not with keep: majority, rewrite or native"),
        ):
            if found:
                raise ValueError(message)

    @property
    def samples_per_prompt(self) -> int:
        """The keys planned per prompt: its samples, or with until_correct its attempts (not all are asked)."""
        return self.max_attempts if self.until_correct is not None and self.max_attempts else self.sampling.n


def check_sampling_taken(teachers: list[TeacherSpec], sampling: SamplingParams) -> None:
    """A temperature or top_p other than the defaults, asked of a teacher whose model refuses them (o-series,
    gpt-5): a ValueError naming the field. At the defaults, such a teacher is simply not sent them."""
    for field in ("temperature", "top_p"):
        if getattr(sampling, field) == SamplingParams.model_fields[field].default:
            continue
        refusing = [t.label for t in teachers if not t.model_capabilities.sampling]
        if refusing:
            raise ValueError(
                f"sampling.{field}: teacher {', '.join(refusing)} does not take {field} (a reasoning model); "
                f"leave sampling.{field} at its default, or set capabilities.sampling: true if the model takes it"
            )
