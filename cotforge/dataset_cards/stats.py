"""Statistics of one subset, kept with the dataset (cotforge_stats.json) so later pushes can merge cards."""

from __future__ import annotations

from statistics import mean, median

from pydantic import BaseModel, ConfigDict

from cotforge.schemas.recipe import FormatMode
from cotforge.schemas.record import CoTRecord


class SubsetStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subset: str
    teacher: str
    granularity: int | None
    format: str
    format_mode: str = FormatMode.direct.value  # native and condensed subsets are arms of their own
    datasets: list[str]
    splits: dict[str, int]
    rows: int
    accuracy: float
    mean_words: float
    median_words: float
    median_steps: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    sample_question: str
    sample_rationale: str


def _native(record: CoTRecord) -> bool:
    return record.format_mode is FormatMode.native


def subset_stats(name: str, records: list[CoTRecord]) -> SubsetStats:
    if not records:
        raise ValueError(f"subset {name} has no records")
    # The native arm's CoT is the teacher's trace (its rationale is the answer line): its length is the trace's.
    words = [len(r.rationale.split()) + (len((r.reasoning or "").split()) if _native(r) else 0) for r in records]
    costs = [r.cost_usd for r in records if r.cost_usd is not None]
    splits: dict[str, int] = {}
    for record in records:
        splits[record.source_split] = splits.get(record.source_split, 0) + 1
    first = records[0]
    return SubsetStats(
        subset=name,
        teacher=first.teacher,
        granularity=first.granularity,
        format=first.format.value,
        format_mode=first.format_mode.value,
        datasets=sorted({r.dataset for r in records}),
        splits=dict(sorted(splits.items())),
        rows=len(records),
        accuracy=sum(r.correct for r in records) / len(records),
        mean_words=round(mean(words), 2),
        median_words=float(median(words)),
        median_steps=float(median(len(r.steps) for r in records)),
        prompt_tokens=sum(r.usage.prompt_tokens for r in records),
        completion_tokens=sum(r.usage.completion_tokens for r in records),
        cost_usd=round(sum(costs), 6) if costs else None,
        sample_question=first.prompt,
        sample_rationale=first.rationale,
    )
