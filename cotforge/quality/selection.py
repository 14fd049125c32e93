"""Record-level selection (`--select`, the second use of the Rank-Surprisal Ratio in arXiv 2601.14249): keep a
fraction of each subset's records, those best suited to the student (the lowest RSR, or one of its two baselines,
mean surprisal and mean rank, under that student: cotforge score), or a seeded random sample of the same size, so
"the best-suited half" can be trained beside "a random half".

    rsr:0.5          the half with the lowest RSR (records with no RSR last), ties broken by record key
    surprisal:0.5    the half with the lowest mean surprisal; rank:0.5, the lowest mean clipped rank
    random:0.5       a random half (seed 0); random:0.5:7 draws with seed 7
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge.quality.rsr import RecordScore, ScoredBy
from cotforge.schemas.record import CoTRecord

SELECT_SYNTAX = "rsr:FRACTION, surprisal:FRACTION, rank:FRACTION or random:FRACTION[:SEED], e.g. rsr:0.5"
# The RecordScore figure each score selection ranks by, lowest first.
RANKED_BY = {"rsr": "rsr", "surprisal": "mean_surprisal", "rank": "mean_rank"}


class UnscoredRecords(ValueError):
    """A score selection over records the student has not scored; the message names the command that scores them."""


class Selection(BaseModel):
    """One `--select`: what ranks the records (or random), the fraction kept, and a random draw's seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: Literal["rsr", "surprisal", "rank", "random"]
    fraction: float = Field(gt=0, le=1)
    seed: int = 0  # random only: recorded, so the same draw is made again

    @property
    def text(self) -> str:
        """The spec as given on the command line, in one spelling (parse_selection reads it back)."""
        seed = f":{self.seed}" if self.by == "random" and self.seed else ""
        return f"{self.by}:{self.fraction:g}{seed}"

    @property
    def label(self) -> str:
        """The spec in a file name (a sweep arm's): ':' as '-'."""
        return self.text.replace(":", "-")

    @property
    def needs_scores(self) -> bool:
        return self.by != "random"

    def kept(self, total: int) -> int:
        """How many of `total` records are kept: the fraction rounded half up, at least one of a non-empty subset."""
        return min(total, max(1, math.floor(self.fraction * total + 0.5))) if total else 0

    def apply(
        self, subset: str, records: list[CoTRecord], scores: Mapping[str, RecordScore] | None = None
    ) -> list[CoTRecord]:
        """The records of `subset` kept, in their order. A score selection needs every record's score (key ->
        RecordScore, one student's); UnscoredRecords otherwise, with `scores` None naming no student."""
        count = self.kept(len(records))
        if not self.needs_scores:
            by_key = sorted(records, key=lambda r: r.key)  # the draw depends on the records, not their order
            chosen = {r.key for r in random.Random(f"{self.seed}:{subset}").sample(by_key, count)}
        else:
            known = scores or {}
            missing = [r.key for r in records if r.key not in known]
            if missing:
                raise UnscoredRecords(f"{len(missing)} of the {len(records)} records of {subset} have no score")
            figure = RANKED_BY[self.by]

            def order(record: CoTRecord) -> tuple[bool, float, str]:
                value = getattr(known[record.key], figure)
                return value is None, value or 0.0, record.key  # no RSR (no surprisal at all): last

            chosen = {r.key for r in sorted(records, key=order)[:count]}
        return [r for r in records if r.key in chosen]


def parse_selection(text: str, option: str = "--select") -> Selection:
    """'rsr:0.5' -> Selection; a ValueError naming `option` and the value otherwise."""
    by, _, rest = text.strip().partition(":")
    fraction, _, seed = rest.partition(":")
    if by not in ("rsr", "surprisal", "rank", "random") or (seed and by != "random"):
        raise ValueError(f"{option} {text!r}: give {SELECT_SYNTAX}")
    try:
        return Selection(by=by, fraction=float(fraction), seed=int(seed) if seed else 0)  # type: ignore[arg-type]
    except ValueError:  # not a number, or pydantic's bounds (a ValidationError is one)
        seeded = " and a whole seed" if seed else ""
        raise ValueError(f"{option} {text!r}: give a fraction above 0 and at most 1{seeded}, e.g. {by}:0.5") from None


@dataclass(frozen=True)
class Scorer:
    """Whose scores a score selection reads: the student as it is loaded (a Hub id, a folder or a .gguf path) and
    its ScoredBy (weights digest and rendering), as `cotforge score` recorded them."""

    student: str
    scored_by: ScoredBy

    def command(self, directory: Path, subset: str) -> str:
        """The `cotforge score` command that scores `subset` of `directory` as this scorer."""
        by = self.scored_by
        return (
            f"cotforge score {directory} --student {self.student} --subset {subset} --template {by.template} "
            f"--reasoning {by.reasoning} --max-length {by.max_length}"
        )

    def describe(self) -> str:
        by = self.scored_by
        return (
            f"{by.student} (weights {by.weights_digest}, template {by.template}, reasoning {by.reasoning}, "
            f"max_length {by.max_length})"
        )
