"""What a judge reads and writes: a custom rubric as a recipe gives it, the verdicts and judge rejections of a build
(judge_scores.parquet, judge_rejections.parquet) and the per-subset means kept in cotforge_stats.json."""

from __future__ import annotations

import re
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The rubrics cotforge.judging ships (a test keeps the two lists equal); a recipe may name them or define its own.
BUILTIN_RUBRICS = ("faithful", "level", "leak")
_RUBRIC_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


class RubricSpec(BaseModel):
    """A rubric of your own: what the judge is asked, and the range of its score. Change `version` whenever the
    instruction changes: verdicts are stored by rubric name and version, so old ones are never reused for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Lower-case letters, digits, '_' or '-'; a column name in judge_scores.parquet")
    version: str = Field(default="1", min_length=1)
    instruction: str = Field(min_length=1, description="What the judge scores, and what each end of the range means")
    min_score: int = 1
    max_score: int = 5

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _RUBRIC_NAME.match(value):
            raise ValueError(f"{value!r}: a rubric name is lower-case letters, digits, '_' or '-'")
        if value in BUILTIN_RUBRICS:
            raise ValueError(f"{value!r} is a built-in rubric: name it alone, or give yours another name")
        return value

    @model_validator(mode="after")
    def _range(self) -> RubricSpec:
        if self.min_score >= self.max_score:
            raise ValueError(f"min_score {self.min_score} must be below max_score {self.max_score}")
        return self


def rubric_name(rubric: str | RubricSpec) -> str:
    return rubric if isinstance(rubric, str) else rubric.name


def check_rubric_list(rubrics: list[str | RubricSpec]) -> list[str | RubricSpec]:
    """Built-in names known, no name twice."""
    names = [rubric_name(r) for r in rubrics]
    unknown = [r for r in rubrics if isinstance(r, str) and r not in BUILTIN_RUBRICS]
    if unknown:
        raise ValueError(
            f"unknown rubric {', '.join(map(str, unknown))}; built-in: {', '.join(BUILTIN_RUBRICS)} (or give a "
            "mapping with name, instruction, min_score, max_score)"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"rubric names must not repeat, got {names}")
    return rubrics


class JudgeOutcome(BaseModel):
    """What every stored judgement carries: which record (its key and subset), which rubric, which judge."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="The judged record's key")
    subset: str
    rubric: str
    rubric_version: str
    judge_model: str
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)


class JudgeScore(JudgeOutcome):
    """A verdict that parsed and validated: a score within the rubric's range and a one-sentence reason."""

    score: int
    reason: str


class JudgeRejection(JudgeOutcome):
    """A verdict that did not: not JSON, a field missing, a score out of range. Kept with why, and the raw text."""

    why: str
    raw_response: str | None = None


_OUTCOME_COLUMNS: dict[str, pl.DataType] = {
    "key": pl.Utf8,
    "subset": pl.Utf8,
    "rubric": pl.Utf8,
    "rubric_version": pl.Utf8,
    "judge_model": pl.Utf8,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "cost_usd": pl.Float64,
}
# The fixed Parquet columns of each, so an empty file still has them.
JUDGE_COLUMNS: dict[type[JudgeOutcome], dict[str, pl.DataType]] = {
    JudgeScore: {**_OUTCOME_COLUMNS, "score": pl.Int64, "reason": pl.Utf8},
    JudgeRejection: {**_OUTCOME_COLUMNS, "why": pl.Utf8, "raw_response": pl.Utf8},
}


def score_columns(scores: list[JudgeScore]) -> pl.DataFrame:
    """One row per judged record: its key and a `judge_<rubric>` column per rubric (null where it has no score)."""
    frame = pl.DataFrame(
        [(s.key, f"judge_{s.rubric}", s.score) for s in scores],
        schema={"key": pl.Utf8, "rubric": pl.Utf8, "score": pl.Int64},
        orient="row",
    )
    if frame.is_empty():
        return frame.select("key")
    return frame.pivot("rubric", index="key", values="score", aggregate_function="last")


class RubricSummary(BaseModel):
    """One rubric over one subset: the mean score of the verdicts, how many records got one, how many were
    rejected (malformed verdicts)."""

    model_config = ConfigDict(extra="forbid")

    mean: float | None
    judged: int = Field(ge=0)
    rejected: int = Field(ge=0)


def summarise(scores: list[JudgeScore], rejections: list[JudgeRejection]) -> dict[str, dict[str, Any]]:
    """subset -> rubric -> RubricSummary as JSON, for cotforge_stats.json."""
    found: dict[tuple[str, str], tuple[list[int], int]] = {}
    for score in scores:
        found.setdefault((score.subset, score.rubric), ([], 0))[0].append(score.score)
    for rejection in rejections:
        values, rejected = found.get((rejection.subset, rejection.rubric), ([], 0))
        found[rejection.subset, rejection.rubric] = (values, rejected + 1)
    summary: dict[str, dict[str, Any]] = {}
    for (subset, rubric), (values, rejected) in sorted(found.items()):
        mean = round(sum(values) / len(values), 3) if values else None
        summary.setdefault(subset, {})[rubric] = RubricSummary(
            mean=mean, judged=len(values), rejected=rejected
        ).model_dump()
    return summary
