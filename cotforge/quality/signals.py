"""Quality signals of a subset beyond correctness, computed in one pass over its answers grouped by question
(records and rejections, API failures left out): memory holds one question's answers, a bounded sample of
rationales and counters, never the subset.

- per question with more than one answer: the teacher's pass rate (correct answers / answers, a difficulty
  estimate) and majority-vote agreement (share of its records that give the most common predicted answer);
- diversity: distinct-n, n = 1..4 (distinct n-grams / n-grams of the tokens of a sample of DISTINCT_SAMPLE
  rationales, n-grams within a rationale; the sample is the rationales with the smallest key hashes, so it does not
  depend on order); mean pairwise similarity of the answers to the same question (rapidfuzz's normalized Indel
  similarity, over at most SIMILARITY_ANSWERS answers of a question); near-duplicates across questions
  (cotforge.quality.duplicates); distinct-n and near-duplicates read a rationale up to SIGNAL_CHARS characters,
  similarity up to SIMILARITY_CHARS (cotforge.quality), and the texts cut are counted;
- complexity: quantiles of rationale length in words and of steps;
- truncation rate: answers rejected as truncated / answers the teacher returned for the subset (records and
  rejections; pending and failed requests returned nothing, so they are not counted).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz.distance import Indel
from rapidfuzz.process import cdist

from cotforge.quality import SIGNAL_CHARS, SIMILARITY_CHARS
from cotforge.quality.duplicates import THRESHOLD, NearDuplicates, tokens
from cotforge.schemas.recipe import FormatMode
from cotforge.schemas.record import CoTRecord, Rejection, RejectionReason

DISTINCT_SAMPLE = 1_000
DISTINCT_N = (1, 2, 3, 4)
SIMILARITY_ANSWERS = 16
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class AnswerRow:
    """What the signals read of one answer."""

    problem_id: str
    key: str
    correct: bool | None  # None: a rejection
    predicted: str | None
    text: str | None  # the CoT a student is shown: a native arm's trace, then its answer line
    words: int
    steps: int
    truncated: bool

    @classmethod
    def of(cls, row: CoTRecord | Rejection) -> AnswerRow:
        return cls.from_fields(row.model_dump(include=_FIELDS, mode="json"), isinstance(row, CoTRecord))

    @classmethod
    def from_fields(cls, data: dict[str, Any], record: bool) -> AnswerRow:
        """From a record's or rejection's fields (a stored payload read as JSON)."""
        if not record:
            truncated = data.get("reason") == RejectionReason.truncated.value
            return cls(data["problem_id"], data["key"], None, None, None, 0, 0, truncated)
        text = data["rationale"]
        if data.get("format_mode") == FormatMode.native.value and data.get("reasoning"):
            text = f"{data['reasoning']}\n{text}"
        steps = len(data.get("steps") or [])
        return cls(
            data["problem_id"],
            data["key"],
            data["correct"],
            data["predicted_answer"],
            text,
            len(text.split()),
            steps,
            False,
        )


_FIELDS = {
    "problem_id",
    "key",
    "correct",
    "predicted_answer",
    "rationale",
    "reasoning",
    "format_mode",
    "steps",
    "reason",
}


class SubsetSignals(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: int = Field(description="Records and rejections (API failures left out)")
    questions: int
    multi_answer_questions: int = Field(description="Questions with more than one answer: the per-question signals")
    mean_pass_rate: float | None = Field(description="Mean over those questions of correct answers / answers")
    questions_all_correct: int
    questions_none_correct: int
    mean_majority_agreement: float | None = Field(description="Mean share of a question's records on its top answer")
    mean_pairwise_similarity: float | None = Field(description="Normalized Indel similarity, answers to one question")
    distinct_n: list[float] = Field(description="Distinct 1..4-grams / n-grams over the sampled rationales")
    distinct_sample: int = Field(description="Rationales in the distinct-n sample")
    near_duplicates: int = Field(description=f"Rationales within Jaccard {THRESHOLD} of an earlier question's")
    near_duplicate_rate: float
    words: dict[str, float] = Field(description="Quantiles of rationale length in words")
    steps: dict[str, float] = Field(description="Quantiles of steps per rationale")
    truncation_rate: float = Field(description="Answers rejected as truncated / answers")
    # Texts longer than the signals read (cotforge.quality), and the bounds: None in signals computed before there
    # were any, when every text was read whole.
    cut_texts: int = Field(0, description="Rationales of which distinct-n and near-duplicates read cut_at_chars")
    cut_at_chars: int | None = None
    similarity_cut_texts: int = Field(0, description="Answers compared on their first similarity_cut_at_chars")
    similarity_cut_at_chars: int | None = None

    def cut_note(self) -> str | None:
        """What the signals read of the texts longer than their bounds; None when every text was read whole."""
        notes = []
        if self.cut_texts:
            notes.append(
                f"rationales longer than {self.cut_at_chars:,} characters (distinct-n and near-duplicates read their "
                f"first {self.cut_at_chars:,}): {self.cut_texts:,}"
            )
        if self.similarity_cut_texts:
            notes.append(
                f"answers longer than {self.similarity_cut_at_chars:,} characters (pairwise similarity compared their "
                f"first {self.similarity_cut_at_chars:,}): {self.similarity_cut_texts:,}"
            )
        return "; ".join(notes) or None


def by_question(rows: Iterable[AnswerRow]) -> Iterator[list[AnswerRow]]:
    """Consecutive rows of one question together (the rows come ordered by question)."""
    for _, group in itertools.groupby(rows, key=lambda row: row.problem_id):
        yield list(group)


def pass_rate(answers: list[AnswerRow]) -> float:
    return sum(1 for a in answers if a.correct) / len(answers)


def top_answers(predicted: Iterable[str]) -> tuple[set[str], int]:
    """The most common of a question's predicted answers (several when tied) and their count."""
    votes = Counter(predicted)
    if not votes:
        return set(), 0
    top = max(votes.values())
    return {answer for answer, count in votes.items() if count == top}, top


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams / n-grams over the texts' tokens (n-grams within a text); 0 when there is none."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        words = tokens(text)
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def quantiles(counts: Counter[int]) -> dict[str, float]:
    """Exact quantiles (the lower value at each rank) of integers held as value -> count."""
    total = sum(counts.values())
    if not total:
        return {}
    result, seen = {}, 0
    wanted = iter(QUANTILES)
    q = next(wanted, None)
    for value in sorted(counts):
        seen += counts[value]
        while q is not None and seen >= q * total:
            result[f"p{round(q * 100)}"] = float(value)
            q = next(wanted, None)
    return result


def _sample_rank(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def subset_signals(rows: Iterable[AnswerRow]) -> SubsetSignals:
    """The signals of one subset from its answers ordered by question (then key)."""
    answers = questions = multi = all_correct = none_correct = truncated = cut = similarity_cut = 0
    pass_sum = agreement_sum = similarity_sum = 0.0
    agreement_questions = similarity_questions = 0
    words: Counter[int] = Counter()
    steps: Counter[int] = Counter()
    sample: list[tuple[int, str]] = []  # max-heap by negated rank: the DISTINCT_SAMPLE smallest ranks
    with NearDuplicates() as duplicates:
        for group in by_question(rows):
            questions += 1
            answers += len(group)
            truncated += sum(a.truncated for a in group)
            records = [a for a in group if a.correct is not None]
            for record in records:
                assert record.text is not None
                words[record.words] += 1
                steps[record.steps] += 1
                duplicates.add(record.problem_id, record.key, record.text)
                cut += len(record.text) > SIGNAL_CHARS
                rank = -_sample_rank(record.key)
                if len(sample) < DISTINCT_SAMPLE:
                    heapq.heappush(sample, (rank, record.text[:SIGNAL_CHARS]))
                elif rank > sample[0][0]:
                    heapq.heapreplace(sample, (rank, record.text[:SIGNAL_CHARS]))
            if len(group) > 1:
                multi += 1
                rate = pass_rate(group)
                pass_sum += rate
                all_correct += rate == 1.0
                none_correct += rate == 0.0
            if len(records) > 1:
                agreement_questions += 1
                agreement_sum += top_answers(r.predicted for r in records if r.predicted)[1] / len(records)
                compared = [r.text or "" for r in records[:SIMILARITY_ANSWERS]]
                similarity_cut += sum(len(text) > SIMILARITY_CHARS for text in compared)
                texts = [text[:SIMILARITY_CHARS] for text in compared]
                matrix = cdist(texts, texts, scorer=Indel.normalized_similarity)
                pairs = len(texts) * (len(texts) - 1)
                similarity_sum += float(matrix.sum() - matrix.trace()) / pairs
                similarity_questions += 1
        near = int(duplicates.duplicate_docs().sum())
    rows_kept = sum(words.values())
    texts = [text for _, text in sample]
    return SubsetSignals(
        answers=answers,
        questions=questions,
        multi_answer_questions=multi,
        mean_pass_rate=pass_sum / multi if multi else None,
        questions_all_correct=all_correct,
        questions_none_correct=none_correct,
        mean_majority_agreement=agreement_sum / agreement_questions if agreement_questions else None,
        mean_pairwise_similarity=similarity_sum / similarity_questions if similarity_questions else None,
        distinct_n=[round(distinct_n(texts, n), 4) for n in DISTINCT_N],
        distinct_sample=len(texts),
        near_duplicates=near,
        near_duplicate_rate=near / rows_kept if rows_kept else 0.0,
        words=quantiles(words),
        steps=quantiles(steps),
        truncation_rate=truncated / answers if answers else 0.0,
        cut_texts=cut,
        cut_at_chars=SIGNAL_CHARS,
        similarity_cut_texts=similarity_cut,
        similarity_cut_at_chars=SIMILARITY_CHARS,
    )


def answer_rows(rows: Iterable[CoTRecord | Rejection]) -> list[AnswerRow]:
    """In-memory answers (an import, a push) as signal rows, ordered by question then key."""
    return sorted((AnswerRow.of(row) for row in rows), key=lambda a: (a.problem_id, a.key))
