"""Export a build: every stored answer to the Parquet outputs, streamed from the store subset by subset, with each
subset's statistics, and the report of the whole corpus (build.py runs the build and calls this at its end)."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cotforge.builders.store import RECORD, Store
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.dataset_cards import StatsTally
from cotforge.quality.filters import majority_votes
from cotforge.quality.signals import AnswerRow, subset_signals
from cotforge.schemas.recipe import Recipe
from cotforge.schemas.record import BuildReport, Coverage, Rejection, RejectionReason, RunReport, with_dataset

TOP_FAILURES = 5


@dataclass(frozen=True)
class RunFigures:
    """What the run that exports did: its row in the store's runs, and its own figures for the report."""

    run_id: int
    wall_s: float
    requests_sent: int
    stored: int  # answers this run stored
    engine_start_s: float
    stopped: str | None  # why the run stopped early, if it did


@dataclass(frozen=True)
class PlanFigures:
    """The plan against the store: the keys it asks for, those with an answer stored, the stored answers it does
    not ask for, and the coverage of a top-up build."""

    planned: int
    stored: int
    unplanned: int
    coverage: Coverage | None = None


def failure_reason(detail: str) -> str:
    """A failure's detail without what differs between requests, so equal causes count together."""
    return re.sub(r" \(after \d+ attempts\)$", "", detail)


def _signal_rows(store: Store, dataset: str, subset: str) -> Iterator[AnswerRow]:
    for kind, payload in store.answers_by_question(dataset, subset):
        yield AnswerRow.from_fields(json.loads(payload), kind == RECORD)


def _readable_report(build_dir: BuildDir) -> BuildReport | None:
    try:
        return build_dir.read_report()
    except BuildDirError:
        return None


def _write_outputs(
    store: Store, recipe: Recipe, build_dir: BuildDir, subsets: dict[str, tuple[str, str]]
) -> dict[str, int]:
    """Parquet per subset and the rejections, streamed from the store, and the statistics of each subset with
    its quality signals (a second pass, by question). Under `keep: majority` the subsets are read by question
    and the answers outvoted go to the rejections. Returns the records written per subset."""
    tallies = {name: StatsTally(name) for name in subsets}
    if recipe.keep == "majority":
        streams = {
            name: tallies[name].counted(
                record for record, rejection in majority_votes(store.records(*key, True)) if rejection is None
            )
            for name, key in subsets.items()
        }
        outvoted = (
            rejection
            for key in subsets.values()
            for _, rejection in majority_votes(store.records(*key, True))
            if rejection is not None
        )
        rejections: Iterable[Rejection] = itertools.chain(store.rejections(), outvoted)
    else:
        streams = {name: tallies[name].counted(store.records(*key)) for name, key in subsets.items()}
        rejections = store.rejections()
    written = build_dir.write_subsets(streams, rejections)
    stats = {
        name: tallies[name].stats(subset_signals(_signal_rows(store, *key))).model_dump(mode="json")
        for name, key in subsets.items()
        if tallies[name].rows
    }
    build_dir.write_stats(stats, keep_added=True)  # a scored or judged build keeps its figures
    return written


def export_build(store: Store, recipe: Recipe, out_dir: Path, run: RunFigures, plan: PlanFigures) -> BuildReport:
    """Every stored answer to Parquet, streamed subset by subset (the store belongs to this directory's recipe, so
    a subset with stored answers is never dropped), and the report of the whole corpus from SQL, this run's figures
    apart. A run that asked and stored nothing, with the outputs current, rewrites nothing and leaves no run
    behind."""
    several = store.datasets() > 1
    counts = store.subsets()
    subsets = {with_dataset(subset, dataset if several else None): (dataset, subset) for dataset, subset in counts}
    # The final check: pending are the planned keys with nothing stored, counted against the plan's own keys
    requested = plan.planned + plan.unplanned
    pending = plan.planned - plan.stored
    changes = store.changes()
    build_dir = BuildDir(out_dir)
    outputs = [build_dir.subset_path(name) for name in subsets] + [build_dir.rejections_path, build_dir.stats_path]
    current = changes == store.exported() and all(path.exists() for path in outputs)
    this_run = RunReport(
        wall_time_s=round(run.wall_s, 3),
        requests_sent=run.requests_sent,
        stored=run.stored,
        engine_start_s=round(run.engine_start_s, 3),
    )
    if current and run.stored == 0 and run.requests_sent == 0:
        old = _readable_report(build_dir)
        if old is not None and (old.requested, old.pending, old.stopped) == (requested, pending, run.stopped):
            store.forget_run(run.run_id)
            return old.model_copy(
                update={"last_run": RunReport(wall_time_s=round(run.wall_s, 3), requests_sent=0, stored=0)}
            )
    if not current or recipe.keep == "majority":  # a majority build's counts are those written
        written = _write_outputs(store, recipe, build_dir, subsets)
        store.mark_exported(changes)
        counts = {subsets[name]: count for name, count in written.items()}
    written_counts = {name: counts[key] for name, key in sorted(subsets.items())}
    report = _report(store, recipe, (requested, pending), run, this_run, plan.coverage, written_counts)
    build_dir.write_report(report)
    return report


def _report(
    store: Store,
    recipe: Recipe,
    requested_pending: tuple[int, int],
    run: RunFigures,
    this_run: RunReport,
    coverage: Coverage | None,
    subsets: dict[str, int],
) -> BuildReport:
    """The report of the whole corpus, every run of it, summed by SQL (the records written per subset are the
    caller's: under `keep: majority` fewer than the store accepted)."""
    requested, pending = requested_pending
    totals = store.totals()
    minority = totals.accepted - sum(subsets.values())
    if minority:
        totals.accepted -= minority
        totals.rejected[RejectionReason.minority_answer.value] = minority
    failures: Counter[str] = Counter()
    for detail, count in totals.failed.items():
        failures[failure_reason(detail)] += count
    runs, total_wall, total_requests = store.run_totals()
    return BuildReport(
        recipe=recipe.name,
        requested=requested,
        accepted=totals.accepted,
        rejected=totals.rejected,
        failed=sum(failures.values()),
        pending=pending,
        stopped=run.stopped,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        cost_usd=totals.cost_usd,
        wall_time_s=round(total_wall, 3),
        requests_sent=total_requests,
        requests_per_s=round(total_requests / total_wall, 3) if total_wall > 0 else 0.0,
        runs=runs,
        last_run=this_run,
        failures=dict(failures.most_common(TOP_FAILURES)),
        subsets=subsets,
        coverage=coverage,
    )
