"""The report of a sweep: every finished cell (all shards) merged, each arm's accuracy with its interval, the best
arm compared with each other on the same questions, and a recommendation per student."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from cotforge.corpus import BuildDirError
from cotforge.safety.atomic import atomic_write_bytes, atomic_write_text
from cotforge.sweeps.adaptive import AdaptiveRecord, SkippedCell
from cotforge.sweeps.agreement import prediction_markdown, with_prediction
from cotforge.sweeps.cells import CellResult, question_groups, read_finished_cells, seed_scores
from cotforge.sweeps.files import HeldOut, read_model, write_model
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.planning import describe_holdout, student_label
from cotforge.sweeps.plot import plot_png
from cotforge.sweeps.power import gap_for_power, power_sentence
from cotforge.sweeps.results import ArmResult, StudentVerdict, SweepReport
from cotforge.sweeps.settings import SweepError, SweepSettings
from cotforge.sweeps.signals import SignalsTable, relate_signals, signals_markdown
from cotforge.sweeps.statistics import RESAMPLES, seed_correlation, verdict

METHOD = (
    "Intervals: a bootstrap over held-out question groups (near-variants together where the hold-out recorded its "
    f"groups, else each question alone; {RESAMPLES:,} resamples, the same draw for every arm, so arms stay paired) on "
    "each arm's per-question mean over its seeds, plus one run-to-run term pooled across arms or given with --run-sd; "
    "seeds are never redrawn. Each paired difference is studentised (bootstrap-t), its seed-level variance redrawn "
    "in every resample from its sampling distribution: a t with the degrees of freedom stated. Which arm is best: the "
    "model confidence set (Hansen, Lunde and Nason 2011) "
    "with the range statistic at the 5% level: the worst arm is eliminated while the largest studentised paired "
    "difference among those left says they are not all equal; the arms left could be the best, because the arm with "
    "the highest observed accuracy is biased upward, more so with more arms. MCS p: the arm stays in the set while it "
    "is above 0.05; no p-value is computed against the observed best, which the data chose."
)


def _arms(
    student: str,
    cells: list[CellResult],
    sweep: SweepDir,
    settings: SweepSettings,
    groups: list[int] | None,
    skipped: list[SkippedCell],
) -> tuple[list[ArmResult], StudentVerdict, str] | None:
    """A student's arms over their seeds, compared with each other; its verdict; its recommendation."""
    by_arm = seed_scores(student, cells, sweep)
    if not by_arm:
        return None
    first = {c.arm: c for c in cells if c.student == student}
    names = list(by_arm)
    matrices = {arm: list(by_arm[arm].values()) for arm in names}
    found = verdict(matrices, groups, run_sd=settings.run_sd)
    not_run = {(c.arm, c.seed) for c in skipped if c.student == student}
    results = []
    for arm, estimate in zip(names, found.arms, strict=True):
        accuracies = [statistics.fmean(s) for s in by_arm[arm].values()]
        results.append(
            ArmResult(
                student=student,
                arm=arm,
                level=first[arm].level,
                seeds=len(accuracies),
                seed_accuracies={seed: statistics.fmean(s) for seed, s in by_arm[arm].items()},
                missing_seeds=[s for s in settings.seeds if s not in by_arm[arm] and (arm, s) not in not_run],
                skipped_seeds=[s for s in settings.seeds if (arm, s) in not_run],
                accuracy=estimate.accuracy,
                accuracy_std=statistics.stdev(accuracies) if len(accuracies) > 1 else None,
                interval=estimate.interval,
                mean_rationale_words=first[arm].mean_rationale_words,
                mcs_p=estimate.mcs_p if len(names) > 1 else None,
                could_be_best=estimate.name in found.could_be_best,
            )
        )
    typical = float(np.median([a.accuracy for a in found.arms]))
    power = power_sentence(len(names), found.pair_se, typical, found.t_degrees_of_freedom, run_share=found.run_share)
    student_verdict = StudentVerdict(
        could_be_best=list(found.could_be_best),
        worse=list(found.worse),
        groups=found.groups,
        run_sd=found.run.sd,
        run_sd_source=found.run.source,
        run_degrees_of_freedom=found.run.degrees_of_freedom,
        pair_se=found.pair_se if len(names) > 1 else None,
        gap_for_80_power=gap_for_power(
            len(names), found.pair_se, typical, df=found.t_degrees_of_freedom, run_share=found.run_share
        )
        if found.pair_se > 0
        else None,
        power=power,
        seed_correlation=seed_correlation([np.asarray(m, dtype=float) for m in matrices.values()]),
        complete=not any(r.missing_seeds for r in results),
    )
    if len(results) == 1:
        return results, student_verdict, f"one arm finished ({names[0]}): nothing to compare yet"
    resampled = f"; {found.questions} questions resampled in {found.groups} near-variant groups" * (
        found.groups < found.questions
    )
    return results, student_verdict, _recommend(results, student_verdict, found.run_sentence + resampled)


def _recommend(results: list[ArmResult], verdict: StudentVerdict, run_sentence: str) -> str:
    """The arms that could be best, as one sentence, with what the study could have found."""
    by_name = {r.arm: r for r in results}
    chance = ", ".join(f"{a} {by_name[a].accuracy:.1%} (MCS p {by_name[a].mcs_p:.2f})" for a in verdict.could_be_best)
    where = "at the 5% level (model confidence set)"
    if len(verdict.could_be_best) == 1:
        text = f"best {where}: {chance}; every other arm is worse"
    elif not verdict.worse:
        text = f"no arm can be told apart from the best {where}: {chance}"
    else:
        text = f"could be best {where}: {chance}; worse: {', '.join(verdict.worse)}"
    text += f". {run_sentence[0].upper()}{run_sentence[1:]}. {verdict.power[0].upper()}{verdict.power[1:]}"
    missing = [r.arm for r in results if r.missing_seeds]
    if missing:
        text += f". Unfinished seeds: {', '.join(missing)} (compared on fewer runs)"
    return text


def _skipped(sweep: SweepDir) -> list[SkippedCell]:
    path = sweep.adaptive_path
    if not path.exists():
        return []
    return read_model(path, AdaptiveRecord, "run the sweep again (finished cells are kept) to rewrite it").skipped


def build_report(out_dir: Path, run_sd: float | None = None) -> SweepReport:
    """Merge every finished cell (all shards) into sweep_report.json, sweep_report.md and sweep.png; `run_sd`
    (from an earlier sweep) replaces the sweep's own, and the report's settings record it."""
    sweep = SweepDir(out_dir)
    if not sweep.settings_path.exists():
        raise SweepError(f"{out_dir}: not a sweep folder (no {sweep.settings_path.name})")
    settings = read_model(sweep.settings_path, SweepSettings, "give the sweep's settings again to rewrite it")
    if run_sd is not None:
        settings = settings.model_copy(update={"run_sd": run_sd})
    held_out = read_model(sweep.held_out_path, HeldOut, "run the sweep again (finished cells are kept) to rewrite it")
    cells, _ = read_finished_cells(sweep)  # a cell that does not check is unfinished: the report marks its seed
    if not cells:
        raise SweepError(f"{out_dir}: no finished cell yet")
    groups = question_groups(held_out, cells[0].total)
    skipped = _skipped(sweep)
    arms: list[ArmResult] = []
    recommendation: dict[str, str] = {}
    verdicts: dict[str, StudentVerdict] = {}
    for student in settings.students:
        found = _arms(student, cells, sweep, settings, groups, skipped)
        if found is not None:
            results, verdicts[student], recommendation[student] = found
            arms += results
    arms, agreement = with_prediction(sweep, arms)
    report = SweepReport(
        settings=settings,
        held_out=held_out.check,
        steps=cells[0].steps,
        cells=cells,
        arms=arms,
        recommendation=recommendation,
        verdicts=verdicts,
        method=METHOD,
        skipped=skipped,
        prediction=agreement,
        signals=_signals(settings, cells, arms),
    )
    write_model(sweep.report_json, report)
    atomic_write_text(sweep.report_md, render_markdown(report))
    png = plot_png(report)
    if png is not None:
        atomic_write_bytes(sweep.plot_path, png)
    return report


def _signals(settings: SweepSettings, cells: list[CellResult], arms: list[ArmResult]) -> SignalsTable | None:
    """The arms beside their corpus's quality signals; None when the corpus can no longer be read."""
    try:
        return relate_signals(Path(settings.corpus), cells, {(a.student, a.arm): a.accuracy for a in arms})
    except BuildDirError:
        return None


def _percent(value: float) -> str:
    return f"{value:.1%}"


def _held_out_sentence(report: SweepReport) -> str:
    s, h = report.settings, report.held_out
    if s.eval_benchmark:
        where = f"{s.eval_benchmark} {s.eval_split}"
    else:
        where = f"{s.holdout:.0%} of the corpus's problems, drawn by families of near-variant questions" + (
            f", at most {s.eval_limit}" if s.eval_limit else ""
        )
    text = f"{h['training_problems']} training problems shared by every arm, {h['questions']} held-out questions"
    text += f" ({where})"
    if "highest_similarity" in h:
        text += f"; {describe_holdout(h)}"
    return text


def selections_sentence(report: SweepReport) -> str:
    """What an arm named arm@selection trained on: the part of the arm's problems its selection kept (the same
    number for every student)."""
    examples = {c.arm: c.train_examples for c in report.cells}
    parts = [
        f"{arm} {n} of {examples.get(arm.split('@')[0], '?')}" for arm, n in sorted(examples.items()) if "@" in arm
    ]
    return (
        f"An arm named arm@selection ({', '.join(report.settings.selections or [])}) trains on part of the arm's "
        "problems: rsr keeps those with the lowest Rank-Surprisal Ratio under each student, surprisal and rank the "
        "lowest of either baseline, random a seeded random part of the same size; with the whole arm's step budget. "
        f"Training examples: {', '.join(parts) or 'none finished'}."
    )


def render_markdown(report: SweepReport) -> str:
    s = report.settings
    lines = [
        f"# Sweep: which {s.vary} for which student",
        "",
        f"Corpus `{s.corpus}`; {_held_out_sentence(report)}. {report.steps} steps per cell, lr "
        f"{s.optimisation.learning_rate:g}, global batch {s.optimisation.global_batch_size}, max length "
        f"{s.rendering.max_length}, "
        f"seeds {', '.join(map(str, s.seeds))}.",
        "",
        "| student | arm | accuracy | per seed | 95% interval | MCS p | could be best | rationale words |",
        "|---|---|---:|---|---|---:|---|---:|",
    ]
    for arm in report.arms:
        spread = f" ± {_percent(arm.accuracy_std)}" if arm.accuracy_std is not None else ""
        seeds = ", ".join(_percent(a) for a in arm.seed_accuracies.values())
        if arm.missing_seeds:
            seeds += f" (seed {', '.join(map(str, arm.missing_seeds))} unfinished)"
        if arm.skipped_seeds:
            seeds += f" (seed {', '.join(map(str, arm.skipped_seeds))} skipped)"
        lines.append(
            f"| {student_label(arm.student, s)} | {arm.arm} | {_percent(arm.accuracy)}{spread} | {seeds} | "
            f"{_percent(arm.interval[0])} to {_percent(arm.interval[1])} | "
            f"{'' if arm.mcs_p is None else f'{arm.mcs_p:.3f}'} | {'yes' if arm.could_be_best else 'no'} | "
            f"{arm.mean_rationale_words:.0f} |"
        )
    if s.selections:
        lines += ["", selections_sentence(report)]
    lines += ["", f"How to read it: {report.method}" if report.method else "", ""]
    for student, text in report.recommendation.items():
        lines.append(f"- **{student_label(student, s)}**: {text}")
    if report.prediction:
        lines += ["", *prediction_markdown(report.arms, report.prediction, lambda student: student_label(student, s))]
    if report.skipped:
        lines += ["", "Cells the sweep did not run (adaptive rounds, --prune):", ""]
        lines += [f"- {c.name}: {c.reason}" for c in report.skipped]
    if report.signals is not None:
        lines += ["", signals_markdown(report.signals, lambda student: student_label(student, s)).rstrip()]
    return "\n".join(lines) + "\n"


def push_to_card(out_dir: Path, repo_id: str) -> str:
    """Add a finished sweep's report (and its plot) as the `sweep` section of a dataset repo's card, the data
    untouched; returns the commit. Raises HubError."""
    from cotforge.hub import push_card_section

    sweep = SweepDir(out_dir)
    body = sweep.report_md.read_text(encoding="utf-8").split("\n", 2)[2]  # without the file's own title
    section = (
        "## Which granularity for which student\n\n"
        + body
        + "\n![Held-out accuracy by granularity level](sweep/accuracy.png)\n"
    )
    plot = sweep.plot_path
    return push_card_section(
        repo_id, "sweep", section, {"sweep/accuracy.png": plot.read_bytes()} if plot.exists() else {}
    )
