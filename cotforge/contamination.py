"""Contamination check: do training questions appear among evaluation questions?

Three tests: as open-r1's decontamination does, an exact match after normalisation (case, punctuation, spacing) and
a shared word n-gram (8 words by default; a question shorter than n words is compared whole); and a near-variant, a
question at least 0.8 similar (rapidfuzz's normalised Indel similarity of the normalised text: the same story with
its numbers or its asked quantity changed, as SVAMP's variants are). Evaluation questions come from the test splits
of the built-in data sets (loaded as sources are: Hub, or a local file) or from any file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cotforge.corpus import BuildDir, BuildDirError, ContaminationSummary
from cotforge.dataset_cards import write_finished
from cotforge.recipes.sources import BUILTIN_SOURCES, SourceError, file_batches, load_problems, text_digest
from cotforge.schemas.recipe import SourceSpec
from cotforge.schemas.record import CoTRecord, Rejection

QUESTION_COLUMNS = ("question", "instruction", "problem", "prompt", "question_concat")
NEAR_VARIANT = 0.8  # SVAMP's story variants score 0.8 to 0.99; unrelated questions rarely pass 0.7
_BLOCK = 1024  # rows compared at once, at most
_BLOCK_PAIRS = 1 << 22  # pairs compared at once, at most: about 20 bytes each while a block is made


def normalise_question(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def word_ngrams(text: str, n: int) -> set[str]:
    words = normalise_question(text).split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def similarity_blocks(rows: Sequence[str], columns: Sequence[str]) -> Iterator[tuple[int, np.ndarray]]:
    """Blocks of the similarity matrix (0..1, float64) of normalised texts `rows` against `columns`, each with the
    index of its first row: every pair is compared (in C++, on every core), about a million pairs a second here.

    The similarity is rapidfuzz's normalised Indel similarity, (length of both - distance) / length of both, divided
    here from the integer distance in one correctly rounded step: it compares with a threshold as written (0.8
    accepts 4/5 and not 0.796, which rapidfuzz's percent score rounded to a byte did). Two empty texts are 1."""
    from rapidfuzz import process
    from rapidfuzz.distance import Indel

    column_lengths = np.fromiter(map(len, columns), np.int32, len(columns))
    step = max(1, min(_BLOCK, _BLOCK_PAIRS // max(1, len(columns))))
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        distance = process.cdist(chunk, columns, scorer=Indel.distance, dtype=np.int32, workers=-1)
        lengths = np.fromiter(map(len, chunk), np.int32, len(chunk))[:, None] + column_lengths
        similarity = np.ones(distance.shape)
        np.divide(lengths - distance, lengths, out=similarity, where=lengths > 0)
        yield start, similarity


@dataclass(frozen=True)
class Overlap:
    problem_id: str
    dataset: str
    train_question: str
    eval_set: str
    eval_question: str
    kind: str  # "exact", "ngram" or "near"
    similarity: float = 1.0  # of the two normalised questions, 0..1 (set for "near")


@dataclass
class ContaminationReport:
    against: list[str]
    train_questions: int
    eval_questions: int
    ngram: int
    near: float | None  # the similarity from which a question is a near-variant; none: not checked
    overlaps: list[Overlap] = field(default_factory=list)
    not_checked: dict[str, str] = field(default_factory=dict)  # evaluation set -> why it could not be loaded

    @property
    def contaminated_ids(self) -> set[str]:
        return {o.problem_id for o in self.overlaps}

    def summary(self) -> str:
        checked = [a for a in self.against if a not in self.not_checked]
        if not self.against:
            return "not checked: no evaluation set (the corpus comes from no built-in data set; name one or a file)"
        if not checked:
            return "not checked: " + "; ".join(f"{k}: {v}" for k, v in self.not_checked.items())
        found = len(self.contaminated_ids)
        text = (
            f"{found} of {self.train_questions:,} training questions overlap with {self.eval_questions:,} evaluation"
            f" questions ({', '.join(checked)}; exact match, a shared {self.ngram}-gram"
            + (f" or at least {self.near:.2f} similar)" if self.near is not None else ")")
        )
        if self.not_checked:
            text += "; not checked: " + ", ".join(self.not_checked)
        return text

    def save(self, folder: Path) -> None:
        BuildDir(folder).write_contamination(asdict(self) | {"summary": self.summary()})


def _file_questions(path: Path) -> list[str]:
    """The questions of a file, read batch by batch: the rows themselves are not kept."""
    questions: list[str] = []
    column = None
    for rows in file_batches(path):
        column = column or next((c for c in QUESTION_COLUMNS if rows and c in rows[0]), None)
        if column is None:
            break
        questions += [str(row[column]) for row in rows if row.get(column)]
    if column is None:
        raise SourceError(f"{path}: no question column (one of {', '.join(QUESTION_COLUMNS)})")
    return questions


def evaluation_questions(against: Iterable[str], split: str = "test") -> tuple[dict[str, list[str]], dict[str, str]]:
    """Questions per evaluation set (a built-in data set's `split`, or a file), and the sets that could not load."""
    loaded: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for name in against:
        try:
            if name in BUILTIN_SOURCES:
                problems = load_problems(SourceSpec(dataset=name, split=split)).problems
                loaded[f"{name}/{split}"] = [p.question for p in problems]
            else:
                loaded[name] = _file_questions(Path(name))
        except SourceError as error:
            failed[name if name not in BUILTIN_SOURCES else f"{name}/{split}"] = str(error).splitlines()[0][:200]
    return loaded, failed


class TrainingQuestion(NamedTuple):
    """What the check reads of a record."""

    problem_id: str
    dataset: str
    question: str


def training_questions(build_dir: Path) -> Iterator[TrainingQuestion]:
    """The questions of a build directory's records, read from its Parquet subsets three columns at a time, in
    batches: a corpus of millions of records is never held. Raises BuildDirError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in BuildDir(build_dir).subset_files().values():
        try:
            for batch in pq.ParquetFile(path).iter_batches(columns=list(TrainingQuestion._fields)):
                columns = [batch.column(name).to_pylist() for name in TrainingQuestion._fields]
                yield from map(TrainingQuestion._make, zip(*columns, strict=True))
        except (pa.ArrowException, OSError) as error:
            raise BuildDirError(f"{path}: not a readable Parquet file ({error})") from None


def check_build(
    build_dir: Path,
    against: list[str] | None = None,
    *,
    split: str = "test",
    ngram: int = 8,
    near: float | None = NEAR_VARIANT,
) -> ContaminationReport:
    """check_records over a build directory's questions as they are read (two passes when `against` is None: one
    finds the data sets the corpus comes from)."""
    if against is None:
        against = default_against(training_questions(build_dir))
    return check_records(training_questions(build_dir), against, split=split, ngram=ngram, near=near)


def check(
    records: Iterable[CoTRecord | TrainingQuestion],
    evaluation: dict[str, list[str]],
    *,
    ngram: int = 8,
    near: float | None = NEAR_VARIANT,
    not_checked: dict[str, str] | None = None,
) -> ContaminationReport:
    """Every training question (one per problem) that matches an evaluation question exactly, by an n-gram, or is a
    near-variant of one (at least `near` similar; None leaves that test out)."""
    # Keyed by 16-byte digests, not the texts: evaluation n-grams and training ids can run to millions.
    exact: dict[bytes, tuple[str, str]] = {}
    by_gram: dict[bytes, tuple[str, str]] = {}
    for name, questions in evaluation.items():
        for question in questions:
            exact.setdefault(text_digest(normalise_question(question)), (name, question))
            for gram in word_ngrams(question, ngram):
                by_gram.setdefault(text_digest(gram), (name, question))
    near_to = [(normalise_question(q), (name, q)) for name, questions in evaluation.items() for q in questions]
    seen: set[bytes] = set()
    overlaps = []
    unmatched: list[CoTRecord | TrainingQuestion] = []  # compared for near-variants a block at a time
    for record in records:
        problem = text_digest(record.problem_id)
        if problem in seen:
            continue
        seen.add(problem)
        hit = exact.get(text_digest(normalise_question(record.question)))
        kind = "exact"
        if hit is None:
            kind = "ngram"
            grams = (text_digest(g) for g in word_ngrams(record.question, ngram))
            hit = next((by_gram[g] for g in grams if g in by_gram), None)
        if hit is not None:
            overlaps.append(Overlap(record.problem_id, record.dataset, record.question, hit[0], hit[1], kind))
        elif near is not None and near_to:
            unmatched.append(record)
            if len(unmatched) == _BLOCK:
                overlaps += _near_variants(unmatched, near_to, near)
                unmatched.clear()
    if unmatched:
        overlaps += _near_variants(unmatched, near_to, near)
    return ContaminationReport(
        against=list(evaluation) + list(not_checked or {}),
        train_questions=len(seen),
        eval_questions=sum(len(q) for q in evaluation.values()),
        ngram=ngram,
        near=near,
        overlaps=overlaps,
        not_checked=dict(not_checked or {}),
    )


def _near_variants(
    records: Sequence[CoTRecord | TrainingQuestion], evaluation: list[tuple[str, tuple[str, str]]], near: float
) -> list[Overlap]:
    """The records whose question is at least `near` similar to an evaluation question (normalised -> set, text)."""
    found = []
    for start, block in similarity_blocks(
        [normalise_question(r.question) for r in records], [e[0] for e in evaluation]
    ):
        best = block.argmax(axis=1)
        scores = block[np.arange(len(block)), best]
        for row in np.nonzero(scores >= near)[0]:
            record, (name, question) = records[start + row], evaluation[best[row]][1]
            found.append(
                Overlap(record.problem_id, record.dataset, record.question, name, question, "near", float(scores[row]))
            )
    return found


def default_against(records: Iterable[CoTRecord | TrainingQuestion]) -> list[str]:
    """The built-in data sets the records come from: their test splits are what a student is evaluated on."""
    return sorted({r.dataset for r in records if r.dataset in BUILTIN_SOURCES})


def check_records(
    records: Iterable[CoTRecord | TrainingQuestion],
    against: list[str] | None = None,
    *,
    split: str = "test",
    ngram: int = 8,
    near: float | None = NEAR_VARIANT,
) -> ContaminationReport:
    """`records` is read twice when `against` is None (a list then, or see check_build)."""
    evaluation, failed = evaluation_questions(against if against is not None else default_against(records), split)
    return check(records, evaluation, ngram=ngram, near=near, not_checked=failed)


def write_without_overlaps(
    report: ContaminationReport,
    records: list[CoTRecord],
    rejections: list[Rejection],
    out_dir: Path,
    origin: str,
    *,
    against: list[str] | None = None,
    split: str = "test",
    ngram: int = 8,
) -> list[CoTRecord]:
    """A build directory at `out_dir` without the questions `report` found, with its report and its own (clean)
    contamination check. Returns the records kept."""
    bad = report.contaminated_ids
    kept = [r for r in records if r.problem_id not in bad]
    kept_rejections = [r for r in rejections if r.problem_id not in bad]
    write_finished(BuildDir(out_dir), f"{origin} without {len(bad)} contaminated questions", kept, kept_rejections)
    check_records(kept, against, split=split, ngram=ngram).save(out_dir)
    return kept


def training_contamination(
    build_dir: Path, subset: str | None = None, against: list[str] | None = None
) -> ContaminationSummary | None:
    """How much of a build directory's training questions are evaluation questions: checked now against `against`,
    else as `cotforge check` last saved it; None when it was never checked. Raises BuildDirError."""
    if against:
        report = check_records(BuildDir(build_dir).read_records([subset] if subset else None), against)
        return ContaminationSummary(summary=report.summary(), overlaps=len(report.overlaps))
    return BuildDir(build_dir).read_contamination()
