"""The report of a sweep: every finished cell (all shards) merged, each arm's accuracy with its interval, the best
arm compared with each other on the same questions, and a recommendation per student."""

from __future__ import annotations

import statistics
from pathlib import Path

from cotforge.corpus import BuildDirError
from cotforge.safety.atomic import atomic_write_bytes, atomic_write_text
from cotforge.sweeps.cells import CellResult, predictions_path, read_finished_cells, scores
from cotforge.sweeps.files import HeldOut, read_model, write_model
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.planning import describe_holdout, student_label
from cotforge.sweeps.plot import plot_png
from cotforge.sweeps.results import ArmResult, StudentVerdict, SweepReport
from cotforge.sweeps.settings import SweepError, SweepSettings
from cotforge.sweeps.signals import SignalsTable, relate_signals, signals_markdown
from cotforge.sweeps.statistics import (
    compare_with_best,
    holm,
    minimum_detectable_effect,
    percentile_interval,
    resampled_accuracies,
    seed_correlation,
    sign_flip_p,
    typical_standard_error,
)

METHOD = (
    "Intervals: a two-level bootstrap over seeds and questions (2,000 resamples; questions drawn jointly for all arms, "
    "seeds within each arm). Which arm is best: multiple comparisons with the best (Hsu's MCB) at the 5% level, "
    "because the arm with the highest observed accuracy is biased upward, more so with more arms; its critical value "
    "holds for every pair of arms at once, so an arm marked 'no' is worse than another arm at the 5% familywise level "
    "even when arms tie. P(best): the share of resamples in which the arm is the best. Paired tests against the "
    "observed best: a sign-flip permutation test on per-question correctness averaged over seeds, Holm-adjusted."
)


def _seed_scores(student: str, cells: list[CellResult], sweep: SweepDir) -> dict[str, dict[int, list[float]]]:
    """Per arm, each finished seed's per-question scores (every cell answered the same questions in order)."""
    by_arm: dict[str, dict[int, list[float]]] = {}
    for cell in sorted(cells, key=lambda c: c.seed):
        if cell.student == student:
            by_arm.setdefault(cell.arm, {})[cell.seed] = scores(predictions_path(sweep, cell))
    return by_arm


def _arms(
    student: str, cells: list[CellResult], sweep: SweepDir, settings: SweepSettings
) -> tuple[list[ArmResult], StudentVerdict, str] | None:
    """A student's arms over their seeds, compared with each other; its verdict; its recommendation."""
    by_arm = _seed_scores(student, cells, sweep)
    if not by_arm:
        return None
    first = {c.arm: c for c in cells if c.student == student}
    names = list(by_arm)
    matrices = {arm: list(by_arm[arm].values()) for arm in names}
    replicates = resampled_accuracies(matrices)
    results = []
    for position, arm in enumerate(names):
        accuracies = [statistics.fmean(s) for s in by_arm[arm].values()]
        results.append(
            ArmResult(
                student=student,
                arm=arm,
                level=first[arm].level,
                seeds=len(accuracies),
                seed_accuracies={seed: statistics.fmean(s) for seed, s in by_arm[arm].items()},
                missing_seeds=[seed for seed in settings.seeds if seed not in by_arm[arm]],
                accuracy=statistics.fmean(accuracies),
                accuracy_std=statistics.stdev(accuracies) if len(accuracies) > 1 else None,
                interval=percentile_interval(replicates[:, position]),
                mean_rationale_words=first[arm].mean_rationale_words,
            )
        )
    per_question = {arm: [statistics.fmean(q) for q in zip(*matrices[arm], strict=True)] for arm in names}
    complete = not any(r.missing_seeds for r in results)
    if len(results) == 1:
        verdict = StudentVerdict(
            could_be_best=names, minimum_detectable_effect=1.0, seed_correlation=None, complete=complete
        )
        return results, verdict, f"one arm finished ({names[0]}): nothing to compare yet"
    comparisons, critical = compare_with_best([r.accuracy for r in results], replicates)
    best = max(range(len(results)), key=lambda i: (results[i].accuracy, -len(names[i])))
    others = [i for i in range(len(results)) if i != best]
    p_values = [sign_flip_p(per_question[names[best]], per_question[names[i]]) for i in others]
    for i, p, p_holm in zip(others, p_values, holm(p_values), strict=True):
        difference = replicates[:, i] - replicates[:, best]
        low, high = percentile_interval(difference)
        results[i].vs_best = {
            "difference": results[i].accuracy - results[best].accuracy,
            "low": low,
            "high": high,
            "p_permutation": p,
            "p_holm": p_holm,
        }
    for result, comparison in zip(results, comparisons, strict=True):
        result.probability_best = comparison.probability_best
        result.mcb_interval = (comparison.mcb_low, comparison.mcb_high)
        result.could_be_best = comparison.could_be_best
    verdict = StudentVerdict(
        could_be_best=[r.arm for r in results if r.could_be_best],
        minimum_detectable_effect=minimum_detectable_effect(typical_standard_error(replicates), critical),
        seed_correlation=seed_correlation(matrices),
        complete=complete,
    )
    return results, verdict, _recommend(results, verdict, len(per_question[names[0]]))


def _recommend(results: list[ArmResult], verdict: StudentVerdict, questions: int) -> str:
    """The arms that could be best, as one sentence, with what the study could have detected."""
    chance = ", ".join(
        f"{r.arm} {r.accuracy:.1%} (P best {r.probability_best:.0%})"
        for r in sorted(results, key=lambda r: -r.accuracy)
        if r.could_be_best
    )
    if len(verdict.could_be_best) == 1:
        text = f"best at the 5% level (MCB): {chance}; every other arm is worse"
    elif len(verdict.could_be_best) == len(results):
        text = f"no arm can be told apart from the best at the 5% level (MCB): {chance}"
    else:
        text = f"could be best at the 5% level (MCB): {chance}; the others are worse"
    text += (
        f". With {questions} questions this study detects a difference of about "
        f"{verdict.minimum_detectable_effect:.1%} with 80% power; a smaller one may exist"
    )
    missing = [r.arm for r in results if r.missing_seeds]
    if missing:
        text += f". Unfinished seeds: {', '.join(missing)} (compared on fewer runs)"
    return text


def build_report(out_dir: Path) -> SweepReport:
    """Merge every finished cell (all shards) into sweep_report.json, sweep_report.md and sweep.png."""
    sweep = SweepDir(out_dir)
    if not sweep.settings_path.exists():
        raise SweepError(f"{out_dir}: not a sweep folder (no {sweep.settings_path.name})")
    settings = read_model(sweep.settings_path, SweepSettings, "give the sweep's settings again to rewrite it")
    held_out = read_model(sweep.held_out_path, HeldOut, "run the sweep again (finished cells are kept) to rewrite it")
    cells, _ = read_finished_cells(sweep)  # a cell that does not check is unfinished: the report marks its seed
    if not cells:
        raise SweepError(f"{out_dir}: no finished cell yet")
    arms: list[ArmResult] = []
    recommendation: dict[str, str] = {}
    verdicts: dict[str, StudentVerdict] = {}
    for student in settings.students:
        found = _arms(student, cells, sweep, settings)
        if found is not None:
            results, verdicts[student], recommendation[student] = found
            arms += results
    report = SweepReport(
        settings=settings,
        held_out=held_out.check,
        steps=cells[0].steps,
        cells=cells,
        arms=arms,
        recommendation=recommendation,
        verdicts=verdicts,
        method=METHOD,
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


def render_markdown(report: SweepReport) -> str:
    s = report.settings
    lines = [
        f"# Sweep: which {s.vary} for which student",
        "",
        f"Corpus `{s.corpus}`; {_held_out_sentence(report)}. {report.steps} steps per cell, lr "
        f"{s.train.learning_rate:g}, global batch {s.train.global_batch_size}, max length {s.train.max_length}, "
        f"seeds {', '.join(map(str, s.seeds))}.",
        "",
        "| student | arm | accuracy | per seed | 95% interval | vs best (paired) | p perm. / Holm | P(best) | could be"
        " best | rationale words |",
        "|---|---|---:|---|---|---|---:|---:|---|---:|",
    ]
    for arm in report.arms:
        spread = f" ± {_percent(arm.accuracy_std)}" if arm.accuracy_std is not None else ""
        seeds = ", ".join(_percent(a) for a in arm.seed_accuracies.values())
        if arm.missing_seeds:
            seeds += f" (seed {', '.join(map(str, arm.missing_seeds))} unfinished)"
        if arm.vs_best is None:
            versus, p = "best observed", ""
        else:
            versus = f"{arm.vs_best['difference']:+.1%} [{arm.vs_best['low']:+.1%}, {arm.vs_best['high']:+.1%}]"
            p = f"{arm.vs_best['p_permutation']:.3f} / {arm.vs_best['p_holm']:.3f}"
        chance = f"{arm.probability_best:.0%}" if arm.probability_best is not None else ""
        lines.append(
            f"| {student_label(arm.student, s)} | {arm.arm} | {_percent(arm.accuracy)}{spread} | {seeds} | "
            f"{_percent(arm.interval[0])} to {_percent(arm.interval[1])} | {versus} | {p} | {chance} | "
            f"{'yes' if arm.could_be_best else 'no'} | {arm.mean_rationale_words:.0f} |"
        )
    lines += ["", f"How to read it: {report.method}" if report.method else "", ""]
    for student, text in report.recommendation.items():
        lines.append(f"- **{student_label(student, s)}**: {text}")
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
