"""Statistics of one subset, kept with the dataset (cotforge_stats.json) so later pushes can merge cards: counted
as the records stream by (a build's export) or from rows in memory (an import, a push), with the quality signals of
cotforge.quality."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cotforge.corpus import BuildDir, BuildDirError, group_by_subset, rejections_by_subset, report_of
from cotforge.corpus.builddir import added_figures
from cotforge.quality.rsr import SubsetSuitability
from cotforge.quality.signals import SubsetSignals, answer_rows, subset_signals
from cotforge.schemas.judge import RubricSummary
from cotforge.schemas.recipe import FormatMode
from cotforge.schemas.record import BuildReport, CoTRecord, Rejection


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
    signals: SubsetSignals | None = None  # None in statistics pushed before the signals existed
    suitability: list[SubsetSuitability] = Field(default_factory=list)  # per student, from `cotforge score`
    judge: dict[str, RubricSummary] | None = None  # rubric -> its verdicts' mean, once `cotforge judge` ran


def _median(counts: Counter[int]) -> float:
    """The median of integers held as value -> count, as statistics.median gives it."""
    ordered = sorted(counts)

    def at(rank: int) -> int:
        seen = 0
        for value in ordered:
            seen += counts[value]
            if rank < seen:
                return value
        raise IndexError(rank)

    total = sum(counts.values())
    return (at((total - 1) // 2) + at(total // 2)) / 2


class StatsTally:
    """The figures of one subset, counted record by record: memory holds counters, not records."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.first: CoTRecord | None = None
        self.rows = self.correct = self.prompt_tokens = self.completion_tokens = 0
        self.cost: float | None = None
        self.datasets: set[str] = set()
        self.splits: Counter[str] = Counter()
        self.words: Counter[int] = Counter()
        self.steps: Counter[int] = Counter()

    def add(self, record: CoTRecord) -> None:
        self.first = self.first or record
        self.rows += 1
        self.correct += record.correct
        # The native arm's CoT is the teacher's trace (its rationale is the answer line): its length is the trace's.
        native = record.format_mode is FormatMode.native
        self.words[len(record.rationale.split()) + (len((record.reasoning or "").split()) if native else 0)] += 1
        self.steps[len(record.steps)] += 1
        self.prompt_tokens += record.usage.prompt_tokens
        self.completion_tokens += record.usage.completion_tokens
        if record.cost_usd is not None:
            self.cost = (self.cost or 0.0) + record.cost_usd
        self.datasets.add(record.dataset)
        self.splits[record.source_split] += 1

    def counted(self, records: Iterable[CoTRecord]) -> Iterator[CoTRecord]:
        """The records, each counted as it passes (a Parquet writer consumes them)."""
        for record in records:
            self.add(record)
            yield record

    def stats(self, signals: SubsetSignals | None) -> SubsetStats:
        first = self.first
        if first is None:
            raise ValueError(f"subset {self.name} has no records")
        return SubsetStats(
            subset=self.name,
            teacher=first.teacher,
            granularity=first.granularity,
            format=first.format.value,
            format_mode=first.format_mode.value,
            datasets=sorted(self.datasets),
            splits=dict(sorted(self.splits.items())),
            rows=self.rows,
            accuracy=self.correct / self.rows,
            mean_words=round(sum(w * n for w, n in self.words.items()) / self.rows, 2),
            median_words=_median(self.words),
            median_steps=_median(self.steps),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=round(self.cost, 6) if self.cost is not None else None,
            sample_question=first.prompt,
            sample_rationale=first.rationale,
            signals=signals,
        )


def subset_stats(name: str, records: list[CoTRecord], rejections: Iterable[Rejection] = ()) -> SubsetStats:
    """The statistics of a subset in memory, with its signals (its rejections count in pass and truncation rates)."""
    tally = StatsTally(name)
    for record in records:
        tally.add(record)
    return tally.stats(subset_signals(answer_rows([*records, *rejections])))


def corpus_stats(subsets: Mapping[str, list[CoTRecord]], rejections: Iterable[Rejection]) -> dict[str, SubsetStats]:
    """The statistics of every subset of a corpus in memory, each with the rejections of its subset."""
    rejected = rejections_by_subset(subsets, rejections)
    return {name: subset_stats(name, records, rejected.get(name, [])) for name, records in subsets.items()}


def saved_added_figures(build_dir: BuildDir) -> dict[str, dict[str, Any]]:
    """Per subset, the figures other commands added to the directory's statistics (ADDED_FIGURES: `cotforge score`,
    `cotforge judge`), typed: what statistics made again from the records (a push) keep."""
    saved = build_dir.read_stats() or {}
    try:
        return {
            name: {
                key: TypeAdapter(SubsetStats.model_fields[key].annotation).validate_python(value)
                for key, value in added_figures(entry).items()
            }
            for name, entry in saved.items()
        }
    except ValidationError as error:
        first = str(error).splitlines()[0]
        raise BuildDirError(f"{build_dir.stats_path}: a subset's added figures cannot be read ({first})") from None


def write_finished(
    build_dir: BuildDir, origin: str, records: list[CoTRecord], rejections: list[Rejection]
) -> BuildReport:
    """A build directory made from finished rows (an import, a pull, a filtered copy): its outputs, its report and
    its statistics with their signals. Returns the report."""
    report = report_of(origin, records, rejections, build_dir.write_outputs(records, rejections))
    build_dir.write_report(report)
    stats = corpus_stats(group_by_subset(records, rejections), rejections)
    build_dir.write_stats({name: value.model_dump(mode="json") for name, value in stats.items()}, keep_added=True)
    return report
