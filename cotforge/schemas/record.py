"""What a build produces: a CoTRecord per accepted answer, a Rejection per answer that is not one, a BuildReport."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from cotforge.answers import AnswerSource, AnswerType
from cotforge.answers.reasoning import with_think_tags
from cotforge.safety.names import safe_name
from cotforge.schemas.problem import Problem, student_prompt
from cotforge.schemas.recipe import CoTFormat, FormatMode, Granularity, PromptMode, SamplingParams


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str
    content: str


INT64_MAX = 2**63 - 1  # the Parquet columns of counts are Int64: a larger count would stop every output


class TokenUsage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_tokens: int = Field(default=0, ge=0, le=INT64_MAX)
    completion_tokens: int = Field(default=0, ge=0, le=INT64_MAX)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class AnswerOrigin(BaseModel):
    """Fields every teacher answer carries, accepted or not: which problem, which prompt, which teacher."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str = Field(
        min_length=1, description="Hash of problem, teacher, sampling, level, format, prompt version, sample"
    )
    problem_id: str
    dataset: str
    teacher: str = Field(description="Teacher label, as in subset names")
    teacher_model: str
    granularity: Granularity | None = Field(description="None for rationales written without a level (human)")
    format: CoTFormat
    format_mode: FormatMode = FormatMode.direct
    prompt_mode: PromptMode
    prompt_version: str
    sample_index: int = Field(ge=0)
    sampling: SamplingParams | None = Field(description="None where unknown (imported data)")
    finish_reason: str | None = None
    usage: TokenUsage = TokenUsage()
    reasoning_tokens: int | None = Field(
        default=None,
        ge=0,
        le=INT64_MAX,
        description="Of usage.completion_tokens, those the trace took, where the teacher reports it",
    )
    cost_usd: float | None = Field(default=None, ge=0)
    latency_s: float | None = Field(default=None, ge=0)
    created_at: datetime = Field(default_factory=_utcnow)

    @field_validator("dataset", "teacher")
    @classmethod
    def _file_name(cls, value: str) -> str:
        return safe_name(value)  # both become part of a subset's file name

    @property
    def subset(self) -> str:
        """The subset in a build of one data set; see `subset_in` for builds of several."""
        return self.subset_in(False)

    def subset_in(self, several_datasets: bool) -> str:
        dataset = self.dataset if several_datasets else None
        return subset_name(self.teacher, self.granularity, self.format, dataset, self.format_mode)


def subset_name(
    teacher: str,
    granularity: int | None,
    fmt: CoTFormat | str,
    dataset: str | None = None,
    format_mode: FormatMode = FormatMode.direct,
) -> str:
    """`<teacher>-g<level>-<format>`, e.g. gpt-4o-g5-cot; `<teacher>-<format>` for rationales without a level;
    `<teacher>-native-cot` for a reasoning teacher's own traces and `<teacher>-condensed-g<level>-cot` for those
    traces rewritten at a level. A build of several data sets puts the data set first (`gsm8k-gpt-4o-g5-cot`), so
    no subset mixes them."""
    level = "" if granularity is None else f"-g{granularity}"
    if format_mode is FormatMode.native:
        level = "-native"
    elif format_mode is FormatMode.condensed:
        level = f"-condensed{level}"
    return with_dataset(f"{teacher}{level}-{CoTFormat(fmt).value}", dataset)


def with_dataset(subset: str, dataset: str | None) -> str:
    """A subset's name in a build of several data sets (the data set first), or as it is."""
    return f"{dataset}-{subset}" if dataset else subset


def problem_fields(problem: Problem) -> dict[str, Any]:
    """The fields of a CoTRecord that carry its problem, beside problem_id and dataset (CoTRecord.problem reads
    them back)."""
    return {
        "source_split": problem.split,
        "question": problem.question,
        "choices": problem.choices,
        "gold_answer": problem.answer,
        "answer_type": problem.answer_type,
    }


class ReasoningView(str, Enum):
    """What a student is shown of a reasoning teacher's record: keep (its trace, then the rationale) or drop (the
    rationale alone). Records without a trace are the same either way."""

    keep = "keep"
    drop = "drop"


class CoTRecord(AnswerOrigin):
    """One accepted teacher answer, with the training views a trainer reads (messages, prompt/completion, alpaca)."""

    source_split: str
    question: str
    choices: list[str] | None = None
    gold_answer: str
    answer_type: AnswerType
    messages_sent: list[ChatMessage] = Field(description="The chat sent to the teacher; empty where unknown")
    rationale: str = Field(min_length=1, description="The teacher's answer, cleaned, ending in 'The answer is X'")
    reasoning: str | None = Field(
        default=None, description="A reasoning teacher's trace (its thinking before the answer), apart from rationale"
    )
    steps: list[str]
    predicted_answer: str = Field(min_length=1)
    answer_source: AnswerSource | None = Field(
        default=None, description="Where the final answer was read: canonical line, boxed, letter form, ..."
    )
    correct: bool
    answer_object: str | None = Field(
        default=None, description="An answer_format's answer: the object the reply validated into, as JSON"
    )

    def problem(self) -> Problem:
        """The problem this record answers, as problem_fields stored it."""
        return Problem(
            id=self.problem_id,
            dataset=self.dataset,
            split=self.source_split,
            question=self.question,
            choices=self.choices,
            answer=self.gold_answer,
            answer_type=self.answer_type,
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def prompt(self) -> str:
        return student_prompt(self.question, self.choices)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def completion(self) -> str:
        return self.rationale

    @computed_field  # type: ignore[prop-decorator]
    @property
    def messages(self) -> list[ChatMessage]:
        return [ChatMessage(role="user", content=self.prompt), ChatMessage(role="assistant", content=self.rationale)]

    def completion_for(self, view: ReasoningView) -> str:
        """The completion a student is shown: with `keep`, the trace in `<think>` tags before the rationale."""
        if view is ReasoningView.keep and self.reasoning:
            return with_think_tags(self.reasoning, self.rationale)
        return self.rationale


class RejectionReason(str, Enum):
    unparseable = "unparseable"  # no final answer could be found
    truncated = "truncated"  # finish_reason == "length"
    refusal = "refusal"
    empty = "empty"
    wrong_answer = "wrong_answer"  # only when the recipe keeps correct answers
    invalid_record = "invalid_record"  # the answer did not validate into a CoTRecord
    no_plain_cot = "no_plain_cot"  # rewrite mode: the plain CoT to rewrite was itself rejected
    api_error = "api_error"  # the request failed after all retries: counted as 'failed'
    no_gold = "no_gold"  # imported data: the question is not in any gold file, so it cannot be scored
    unusable_gold = "unusable_gold"  # the gold answer does not read as an answer of its type
    unstorable_text = "unstorable_text"  # lone surrogates or NULs in the answer (raw_response keeps it, replaced)
    malformed = "malformed"  # a field of the response out of shape (content or refusal not text, a choice no object)
    too_long = "too_long"  # longer than the recipe's max_answer_chars (raw_response keeps its start)
    no_trace = "no_trace"  # the native arm: the teacher wrote no reasoning trace to be the CoT
    minority_answer = "minority_answer"  # keep: majority: not its question's most common answer
    schema_mismatch = "schema_mismatch"  # an answer_format's reply that does not validate into its model


class Rejection(AnswerOrigin):
    """A teacher answer kept aside, with why and what came back."""

    reason: RejectionReason
    detail: str = ""
    raw_response: str | None = None
    raw_reasoning: str | None = Field(default=None, description="The trace a reasoning teacher wrote, if any")


class RunReport(BaseModel):
    """One run of a build (the first, or a resume)."""

    model_config = ConfigDict(extra="forbid")

    wall_time_s: float = Field(ge=0)
    requests_sent: int = Field(ge=0, description="Requests or engine prompts sent, retries included")
    stored: int = Field(ge=0, description="Answers this run stored")
    engine_start_s: float = Field(default=0.0, ge=0, description="Starting in-process engines (vLLM), in wall_time_s")


class Coverage(BaseModel):
    """Top-up sampling (until_correct) per prompt: one problem asked of one teacher at one level and format."""

    model_config = ConfigDict(extra="forbid")

    until_correct: int = Field(gt=0)
    max_attempts: int = Field(gt=0)
    prompts: int = Field(ge=0)
    covered: int = Field(ge=0, description="Prompts with at least until_correct correct answers")
    some_correct: int = Field(ge=0, description="Prompts with at least one correct answer")
    none_correct: int = Field(ge=0, description="Prompts with no correct answer")
    attempts: dict[int, int] = Field(default_factory=dict, description="Prompts by the attempts stored for them")


class BuildReport(BaseModel):
    """The corpus of a build directory: every run of it together, the last run's figures apart."""

    model_config = ConfigDict(extra="forbid")

    recipe: str
    requested: int = Field(ge=0)
    accepted: int = Field(ge=0)
    rejected: dict[RejectionReason, int] = Field(default_factory=dict)
    failed: int = Field(ge=0)
    pending: int = Field(default=0, ge=0, description="Not asked yet: the build was stopped or ran out of budget")
    stopped: str | None = Field(default=None, description="Why the build stopped early, if it did")
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)
    wall_time_s: float = Field(default=0.0, ge=0, description="Over every run")
    requests_sent: int = Field(default=0, ge=0, description="Over every run, retries included")
    requests_per_s: float = Field(default=0.0, ge=0, description="requests_sent / wall_time_s")
    runs: int = Field(default=0, ge=0)
    last_run: RunReport | None = None
    failures: dict[str, int] = Field(
        default_factory=dict, description="The most common reasons of the failed answers, with their counts"
    )
    subsets: dict[str, int] = Field(default_factory=dict, description="Accepted records per subset")
    coverage: Coverage | None = Field(default=None, description="With until_correct: what top-up sampling reached")
    complete: bool = Field(
        default=False, description="Every requested answer is stored (none failed or pending); set from the counts"
    )

    @model_validator(mode="after")
    def _counts_add_up(self) -> BuildReport:
        object.__setattr__(self, "complete", self.failed == 0 and self.pending == 0)
        if RejectionReason.api_error in self.rejected:
            raise ValueError("API failures are counted in 'failed', not 'rejected'")
        rejected = sum(self.rejected.values())
        if self.requested != self.accepted + rejected + self.failed + self.pending:
            raise ValueError(
                f"requested ({self.requested}) != accepted ({self.accepted}) + rejected ({rejected})"
                f" + failed ({self.failed}) + pending ({self.pending})"
            )
        return self
