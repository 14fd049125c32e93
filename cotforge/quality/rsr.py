"""How well a subset suits one student, before any training: the Rank-Surprisal Ratio (Yang et al., arXiv
2601.14249). Each completion token's surprisal (-log p, in nats) and rank (1 + tokens with a strictly higher logit,
clipped at RANK_CLIP) under the student; a record's RSR is its summed ranks over its summed surprisals; a subset's
is the mean of its records' mean ranks over the mean of their mean surprisals. Low is better suited: tokens the
student ranks highly yet still learns from. The two baselines, mean surprisal and mean rank, are kept beside it.

The scores themselves come from cotforge.suitability; this is what cotforge_stats.json keeps of them per subset.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

RANK_CLIP = 100


class ScoredBy(BaseModel):
    """Whose scores these are: a student's weights (a digest of them) and how records were shown to it. Scores are
    reused only for the very same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student: str  # a short name, as the sweep labels students
    weights_digest: str
    template: str  # the resolved template: chat, plain, alpaca, ...
    reasoning: str  # keep or drop, as the trainer's option
    max_length: int


class RecordScore(BaseModel):
    """One record's figures under one student."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: int  # completion tokens scored
    mean_surprisal: float
    mean_rank: float
    rsr: float | None  # None when the student found every token certain (no surprisal to divide by)


def record_score(tokens: int, surprisal_sum: float, rank_sum: float) -> RecordScore:
    return RecordScore(
        tokens=tokens,
        mean_surprisal=surprisal_sum / tokens,
        mean_rank=rank_sum / tokens,
        rsr=rank_sum / surprisal_sum if surprisal_sum > 0 else None,
    )


class SubsetSuitability(BaseModel):
    """A subset's scores under one student (data-set level, as the paper defines them)."""

    model_config = ConfigDict(extra="forbid")

    scored_by: ScoredBy
    records: int  # records scored
    not_scored: int  # records whose prompt alone fills max_length (the trainer drops them too)
    tokens: int
    rsr: float | None
    mean_surprisal: float | None  # baseline: mean of the records' mean surprisals
    mean_rank: float | None  # baseline: mean of the records' mean ranks


def subset_suitability(scored_by: ScoredBy, scores: Iterable[RecordScore], not_scored: int) -> SubsetSuitability:
    scores = list(scores)
    count = len(scores)
    surprisal = sum(s.mean_surprisal for s in scores) / count if count else None
    rank = sum(s.mean_rank for s in scores) / count if count else None
    return SubsetSuitability(
        scored_by=scored_by,
        records=count,
        not_scored=not_scored,
        tokens=sum(s.tokens for s in scores),
        rsr=rank / surprisal if surprisal and rank is not None else None,
        mean_surprisal=surprisal,
        mean_rank=rank,
    )
