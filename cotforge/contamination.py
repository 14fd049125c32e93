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

import numpy as np

from cotforge.corpus import BuildDir, ContaminationSummary
from cotforge.dataset_cards import write_finished
from cotforge.recipes.sources import BUILTIN_SOURCES, SourceError, file_rows, load_problems
from cotforge.schemas.recipe import SourceSpec
from cotforge.schemas.record import CoTRecord, Rejection

QUESTION_COLUMNS = ("question", "instruction", "problem", "prompt", "question_concat")
NEAR_VARIANT = 0.8  # SVAMP's story variants score 0.8 to 0.99; unrelated questions rarely pass 0.7
_BLOCK = 1024  # rows compared at once: a block of rows x columns similarity bytes


def normalise_question(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def word_ngrams(text: str, n: int) -> set[str]:
    words = normalise_question(text).split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def similarity_blocks(rows: Sequence[str], columns: Sequence[str]) -> Iterator[tuple[int, np.ndarray]]:
    """Blocks of the similarity matrix (0..100, uint8) of normalised texts `rows` against `columns`, each with the
    index of its first row: every pair is compared (in C++, on every core), about a million pairs a second here."""
    from rapidfuzz import fuzz, process

    for start in range(0, len(rows), _BLOCK):
        block = process.cdist(rows[start : start + _BLOCK], columns, scorer=fuzz.ratio, dtype=np.uint8, workers=-1)
        yield start, block


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
    rows = file_rows(path)
    column = next((c for c in QUESTION_COLUMNS if rows and c in rows[0]), None)
    if column is None:
        raise SourceError(f"{path}: no question column (one of {', '.join(QUESTION_COLUMNS)})")
    return [str(row[column]) for row in rows if row.get(column)]


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


def check(
    records: Iterable[CoTRecord],
    evaluation: dict[str, list[str]],
    *,
    ngram: int = 8,
    near: float | None = NEAR_VARIANT,
    not_checked: dict[str, str] | None = None,
) -> ContaminationReport:
    """Every training question (one per problem) that matches an evaluation question exactly, by an n-gram, or is a
    near-variant of one (at least `near` similar; None leaves that test out)."""
    exact: dict[str, tuple[str, str]] = {}
    by_gram: dict[str, tuple[str, str]] = {}
    for name, questions in evaluation.items():
        for question in questions:
            exact.setdefault(normalise_question(question), (name, question))
            for gram in word_ngrams(question, ngram):
                by_gram.setdefault(gram, (name, question))
    seen: set[str] = set()
    overlaps = []
    unmatched: list[CoTRecord] = []
    for record in records:
        if record.problem_id in seen:
            continue
        seen.add(record.problem_id)
        hit = exact.get(normalise_question(record.question))
        kind = "exact"
        if hit is None:
            kind = "ngram"
            hit = next((by_gram[g] for g in word_ngrams(record.question, ngram) if g in by_gram), None)
        if hit is not None:
            overlaps.append(Overlap(record.problem_id, record.dataset, record.question, hit[0], hit[1], kind))
        elif near is not None:
            unmatched.append(record)
    if unmatched and exact:
        overlaps += _near_variants(unmatched, list(exact.items()), near)
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
    records: list[CoTRecord], evaluation: list[tuple[str, tuple[str, str]]], near: float
) -> list[Overlap]:
    """The records whose question is at least `near` similar to an evaluation question (normalised -> set, text)."""
    cutoff = round(near * 100)
    found = []
    for start, block in similarity_blocks(
        [normalise_question(r.question) for r in records], [e[0] for e in evaluation]
    ):
        best = block.argmax(axis=1)
        for row in np.nonzero(block[np.arange(len(block)), best] >= cutoff)[0]:
            record, (name, question) = records[start + row], evaluation[best[row]][1]
            score = int(block[row, best[row]]) / 100
            found.append(Overlap(record.problem_id, record.dataset, record.question, name, question, "near", score))
    return found


def default_against(records: Iterable[CoTRecord]) -> list[str]:
    """The built-in data sets the records come from: their test splits are what a student is evaluated on."""
    return sorted({r.dataset for r in records if r.dataset in BUILTIN_SOURCES})


def check_records(
    records: list[CoTRecord],
    against: list[str] | None = None,
    *,
    split: str = "test",
    ngram: int = 8,
    near: float | None = NEAR_VARIANT,
) -> ContaminationReport:
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
