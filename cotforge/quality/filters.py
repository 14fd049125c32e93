"""Filters on the quality signals: a recipe's `keep: majority`, and `--min-pass-rate`, `--max-pass-rate` and
`--dedup` of `cotforge export` and `train`."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from cotforge.corpus import BuildDir, rejections_by_subset
from cotforge.quality.duplicates import NearDuplicates
from cotforge.quality.scores import ScoreStore
from cotforge.quality.selection import Scorer, Selection, UnscoredRecords
from cotforge.quality.signals import answer_rows, by_question, pass_rate, top_answers
from cotforge.schemas.record import AnswerOrigin, CoTRecord, Rejection, RejectionReason

_ORIGIN = set(AnswerOrigin.model_fields)


def majority_votes(records: Iterable[CoTRecord]) -> Iterator[tuple[CoTRecord, Rejection | None]]:
    """Each record (ordered by question) with None when it gives its question's most common predicted answer, else
    the rejection it becomes under `keep: majority`. Every answer tied for the most votes is kept, and a question
    with one record keeps it: a vote needs n > 1 samples."""
    for _, group in itertools.groupby(records, key=lambda r: r.problem_id):
        answers = list(group)
        top, votes = top_answers(r.predicted_answer for r in answers)
        for record in answers:
            if record.predicted_answer in top:
                yield record, None
                continue
            detail = (
                f"answered {record.predicted_answer!r}; {votes} of the question's {len(answers)} answers said "
                f"{' or '.join(repr(t) for t in sorted(top))}"
            )
            origin = record.model_dump(include=_ORIGIN)
            yield (
                record,
                Rejection(
                    **origin,
                    reason=RejectionReason.minority_answer,
                    detail=detail,
                    raw_response=record.rationale,
                    raw_reasoning=record.reasoning,
                ),
            )


@dataclass(frozen=True)
class QualityFilter:
    """Keep the questions whose pass rate (correct answers / answers, the subset's rejections counted; with one
    answer it is 0 or 1) lies within [min_pass_rate, max_pass_rate]; with `dedup`, drop each rationale that is a
    near-duplicate of an earlier question's (cotforge.quality.duplicates), keeping the first of each group; with
    `min_judge` ((rubric, score) pairs), keep the records the judge scored at least that on each rubric (a record
    without a valid verdict for it is dropped); then with `select`, a fraction of each subset's records (a score
    selection reads the scores `scorer` made: cotforge.quality.selection)."""

    min_pass_rate: float | None = None
    max_pass_rate: float | None = None
    dedup: bool = False
    min_judge: tuple[tuple[str, int], ...] = ()
    select: Selection | None = None
    scorer: Scorer | None = None

    def __post_init__(self) -> None:
        for flag, value in (("--min-pass-rate", self.min_pass_rate), ("--max-pass-rate", self.max_pass_rate)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{flag} {value:g}: a pass rate is between 0 and 1")
        low, high = self.min_pass_rate, self.max_pass_rate
        if low is not None and high is not None and low > high:
            raise ValueError(f"--min-pass-rate {low:g} is above --max-pass-rate {high:g}: no question would pass")

    @property
    def active(self) -> bool:
        bounds = self.min_pass_rate is not None or self.max_pass_rate is not None
        return bounds or self.dedup or bool(self.min_judge) or self.select is not None

    def _within(self, rate: float) -> bool:
        low = 0.0 if self.min_pass_rate is None else self.min_pass_rate
        high = 1.0 if self.max_pass_rate is None else self.max_pass_rate
        return low <= rate <= high

    def subset(self, records: list[CoTRecord], rejections: Iterable[Rejection]) -> list[CoTRecord]:
        """The records of one subset that pass, in their order."""
        rows = answer_rows([*records, *rejections])
        kept = {group[0].problem_id for group in by_question(rows) if self._within(pass_rate(group))}
        dropped: set[str] = set()
        if self.dedup:
            with NearDuplicates() as duplicates:
                for row in rows:
                    if row.text is not None and row.problem_id in kept:
                        duplicates.add(row.problem_id, row.key, row.text)
                dropped = set(duplicates.duplicates())
        return [r for r in records if r.problem_id in kept and r.key not in dropped]

    def apply(self, subsets: Mapping[str, list[CoTRecord]], rejections: list[Rejection]) -> dict[str, list[CoTRecord]]:
        """Every subset filtered, each with the rejections of its own subset."""
        if not self.active:
            return dict(subsets)
        rejected = rejections_by_subset(subsets, rejections)
        return {name: self.subset(records, rejected.get(name, [])) for name, records in subsets.items()}

    def apply_in(self, directory: BuildDir, subsets: Mapping[str, list[CoTRecord]]) -> dict[str, list[CoTRecord]]:
        """`apply` with the build directory's rejections, then the judge's bounds on its judge_scores.parquet, then
        the selection (on its suitability.parquet for a score selection)."""
        kept = self._judged(directory, self.apply(subsets, directory.read_rejections()))
        select = self.select
        if select is None:
            return kept
        if not select.needs_scores:
            return {name: select.apply(name, records) for name, records in kept.items()}
        if self.scorer is None:
            raise ValueError(f"--select {select.text}: give the student whose scores it ranks by (--student)")
        scores = ScoreStore(directory).read(self.scorer.scored_by)
        selected = {}
        for name, records in kept.items():
            try:
                selected[name] = select.apply(name, records, scores)
            except UnscoredRecords as error:
                raise UnscoredRecords(
                    f"--select {select.text}: {error} under {self.scorer.describe()}; run "
                    f"`{self.scorer.command(directory.path, name)}` first (it leaves out a record whose prompt alone "
                    "fills max_length: raise --max-length for those)"
                ) from None
        return selected

    def _judged(self, directory: BuildDir, kept: dict[str, list[CoTRecord]]) -> dict[str, list[CoTRecord]]:
        """The records the judge's bounds keep (all without --min-judge)."""
        if not self.min_judge:
            return kept
        scores = directory.read_judge_scores()
        by_rubric: dict[str, dict[str, int]] = {}
        for score in scores:
            by_rubric.setdefault(score.rubric, {})[score.key] = score.score
        for rubric, _ in self.min_judge:
            if rubric not in by_rubric:
                raise ValueError(
                    f"--min-judge {rubric}: {directory.path} has no {rubric} scores (it has "
                    f"{', '.join(sorted(by_rubric)) or 'none'}); run `cotforge judge --rubric {rubric}` first"
                )
        return {
            name: [
                r for r in records if all(by_rubric[b].get(r.key, least - 1) >= least for b, least in self.min_judge)
            ]
            for name, records in kept.items()
        }


def parse_min_judge(values: list[str] | None) -> tuple[tuple[str, int], ...]:
    """'faithful:4' -> (('faithful', 4),); a ValueError naming the value otherwise."""
    found = []
    for value in values or []:
        rubric, _, score = value.partition(":")
        if not rubric.strip() or not score.strip().lstrip("-").isdigit():
            raise ValueError(f"--min-judge {value!r}: give a rubric and a whole score, e.g. faithful:4")
        found.append((rubric.strip(), int(score)))
    return tuple(found)
