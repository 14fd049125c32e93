"""Recipe: what to build. Every field a user can set in YAML or on the command line lives here."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cotforge.answers import AnswerType
from cotforge.safety.names import safe_name
from cotforge.schemas.answer_format import STRUCTURED_OUTPUT_HELP, AnswerFormatSpec, StructuredOutput
from cotforge.schemas.guides import CustomGuides
from cotforge.schemas.judge import RubricSpec, check_rubric_list

# The teachers' part of the Recipe: each backend's settings are in cotforge.schemas.teachers (some names stay here).
from cotforge.schemas.teachers import TEACHER as TEACHER
from cotforge.schemas.teachers import OpenAITeacherSpec as OpenAITeacherSpec
from cotforge.schemas.teachers import TeacherSpec as TeacherSpec
from cotforge.schemas.teachers import parse_teacher
from cotforge.schemas.teachers.base import teacher_label as teacher_label

# The built-in data sets (cotforge.recipes.sources.builtin loads them; a test keeps the two lists equal).
BUILTIN_DATASETS = ("gsm8k", "svamp", "aqua", "math", "csqa", "obqa", "strategyqa")
Granularity = Annotated[int, Field(ge=0, le=6, description="0 = answer only, 1 = terse ... 6 = every step explained")]


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


class JudgeSpec(BaseModel):
    """A judge of the accepted answers (`cotforge judge`): a teacher of any backend, and the rubrics it scores.
    Not part of the recipe's identity: judging changes no answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher: TeacherSpec
    rubrics: list[str | RubricSpec] = Field(
        min_length=1, description="Built-in faithful, level, leak, or mappings with name, instruction, min/max_score"
    )
    structured_output: StructuredOutput = Field(default="json_schema", description=STRUCTURED_OUTPUT_HELP)
    max_tokens: int = Field(default=256, gt=0, description="The judge's token budget per verdict")

    @field_validator("teacher", mode="before")
    @classmethod
    def _teacher_string(cls, value: object) -> object:
        return parse_teacher(value) if isinstance(value, str) else value

    @field_validator("rubrics")
    @classmethod
    def _known_rubrics(cls, value: list[str | RubricSpec]) -> list[str | RubricSpec]:
        return check_rubric_list(value)


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
    answer_format: AnswerFormatSpec | None = Field(
        default=None,
        description="Ask for the answer as a JSON object of this model ({answer: int, unit: str}, a JSON schema or "
        "package.module:Model), validated into the record's answer_object",
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
    judge: JudgeSpec | None = Field(default=None, description="What `cotforge judge` scores the answers with")

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
        if self.answer_format is not None and (self.format_mode is FormatMode.rewrite or self.native):
            raise ValueError("answer_format: an answer in a schema is asked directly; not with rewrite or native")
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
