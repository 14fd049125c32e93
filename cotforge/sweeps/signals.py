"""The paper's third finding as a table a user can read: how each arm's student accuracy goes with its corpus's
signals (the teacher's accuracy, the mean rationale length, distinct-2), per student, as Spearman's rank
correlation over the arms with a percentile bootstrap interval (arms resampled). A handful of arms gives wide
intervals, and a correlation between arms says nothing of what causes what: arms differ in more than one signal."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from cotforge.corpus import BuildDir
from cotforge.dataset_cards import SubsetStats, corpus_stats
from cotforge.sweeps.cells import CellResult

RESAMPLES = 2000
LEVEL = 0.95
MIN_ARMS = 3  # fewer arms leave nothing to rank

SIGNALS: dict[str, Callable[[SubsetStats], float | None]] = {
    "teacher accuracy": lambda s: s.accuracy,
    "mean rationale words": lambda s: s.mean_words,
    "distinct-2": lambda s: s.signals.distinct_n[1] if s.signals else None,
}


class ArmSignals(BaseModel):
    student: str
    arm: str
    subset: str
    accuracy: float = Field(description="The student's held-out accuracy, mean over seeds")
    signals: dict[str, float | None] = Field(description="The arm's corpus signals, by name (SIGNALS)")


class SignalCorrelation(BaseModel):
    student: str
    signal: str
    arms: int
    spearman: float | None = Field(description="Rank correlation of student accuracy with the signal over the arms")
    interval: tuple[float, float] | None = Field(description="Percentile bootstrap interval, arms resampled")


class SignalsTable(BaseModel):
    arms: list[ArmSignals]
    correlations: list[SignalCorrelation]


def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties given their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None when either side is constant (no order to compare)."""
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return None if sxx == 0 or syy == 0 else sxy / (sxx * syy) ** 0.5


def spearman_interval(x: Sequence[float], y: Sequence[float], seed: int = 0) -> tuple[float, float] | None:
    """The percentile bootstrap interval of spearman(x, y), pairs resampled; resamples with a constant side are
    left out, and None when too few remain to say anything."""
    rng = random.Random(seed)
    found = []
    for _ in range(RESAMPLES):
        picks = [rng.randrange(len(x)) for _ in x]
        value = spearman([x[i] for i in picks], [y[i] for i in picks])
        if value is not None:
            found.append(value)
    if len(found) < RESAMPLES // 2:
        return None
    found.sort()
    tail = (1 - LEVEL) / 2
    return found[int(tail * (len(found) - 1))], found[round((1 - tail) * (len(found) - 1))]


def correlation_over(
    pairs: Sequence[tuple[float, float]], minimum: int
) -> tuple[float | None, tuple[float, float] | None]:
    """spearman and spearman_interval over (x, y) pairs; neither with fewer than `minimum` pairs."""
    if len(pairs) < minimum:
        return None, None
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    return spearman(xs, ys), spearman_interval(xs, ys)


def _corpus_stats(corpus: Path, subsets: set[str]) -> dict[str, SubsetStats]:
    """The statistics the corpus's export wrote, or computed from its records where it wrote none."""
    directory = BuildDir(corpus)
    saved = directory.read_stats() or {}
    found = {name: SubsetStats.model_validate(saved[name]) for name in subsets if name in saved}
    missing = (subsets & set(directory.subset_files())) - set(found)  # a mixture's arm is no one subset
    if missing:
        found |= corpus_stats(directory.read_subsets(missing), directory.read_rejections())
    return found


def relate_signals(corpus: Path, cells: list[CellResult], accuracy: dict[tuple[str, str], float]) -> SignalsTable:
    """Each arm's accuracy (by (student, arm)) beside its corpus's signals (none for a mixture's arm), and per student
    and signal the rank correlation over the arms. Raises BuildDirError when the corpus cannot be read."""
    subset_of = {(c.student, c.arm): c.subset for c in cells}
    stats = _corpus_stats(corpus, set(subset_of.values()))
    arms = [
        ArmSignals(
            student=student,
            arm=arm,
            subset=subset_of[(student, arm)],
            accuracy=value,
            signals={
                name: read(stats[subset_of[(student, arm)]]) if subset_of[(student, arm)] in stats else None
                for name, read in SIGNALS.items()
            },
        )
        for (student, arm), value in accuracy.items()
    ]
    correlations = []
    for student in dict.fromkeys(a.student for a in arms):
        for name in SIGNALS:
            pairs = [
                (a.accuracy, float(value))
                for a in arms
                if a.student == student and (value := a.signals[name]) is not None
            ]
            rho, interval = correlation_over(pairs, MIN_ARMS)
            correlations.append(
                SignalCorrelation(student=student, signal=name, arms=len(pairs), spearman=rho, interval=interval)
            )
    return SignalsTable(arms=arms, correlations=correlations)


def _number(value: float | None, form: str) -> str:
    return "n/a" if value is None else format(value, form)


def signals_markdown(table: SignalsTable, label: Callable[[str], str]) -> str:
    """The section of the sweep's report: arms beside their corpus's signals, then the correlations, worded as
    associations between arms."""
    names = list(SIGNALS)
    lines = [
        "## Student accuracy and the corpus's signals",
        "",
        "| student | arm | accuracy | " + " | ".join(names) + " |",
        "|---|---|---:|" + "---:|" * len(names),
    ]
    for arm in table.arms:
        values = [_number(arm.signals[n], ".1%" if n == "teacher accuracy" else ".3g") for n in names]
        lines.append(f"| {label(arm.student)} | {arm.arm} | {arm.accuracy:.1%} | " + " | ".join(values) + " |")
    lines += [
        "",
        "| student | signal | arms | Spearman rank correlation | 95% bootstrap interval |",
        "|---|---|---:|---:|---|",
    ]
    for c in table.correlations:
        interval = "n/a" if c.interval is None else f"{c.interval[0]:+.2f} to {c.interval[1]:+.2f}"
        lines.append(f"| {label(c.student)} | {c.signal} | {c.arms} | {_number(c.spearman, '+.2f')} | {interval} |")
    lines += [
        "",
        f"Each correlation ranks a student's arms by held-out accuracy and by the signal of the arm's subset; its "
        f"interval resamples the arms ({RESAMPLES} times). With few arms the intervals are wide, and an interval that "
        "holds 0 shows no association. Arms differ in more than one signal at once, so a correlation here is an "
        f"association between these arms, not evidence that the signal causes the accuracy. n/a: fewer than {MIN_ARMS} "
        "arms, or a signal that does not vary.",
    ]
    return "\n".join(lines) + "\n"
