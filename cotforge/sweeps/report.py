"""The report of a sweep: every finished cell (all shards) merged, each arm's accuracy with its interval, the best
arm compared with each other on the same questions, and a recommendation per student."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from cotforge.corpus import BuildDirError
from cotforge.sweeps.cells import CellResult, scores
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.planning import student_label
from cotforge.sweeps.plot import plot_png
from cotforge.sweeps.results import ArmResult, SweepReport
from cotforge.sweeps.settings import SweepError, SweepSettings
from cotforge.sweeps.signals import SignalsTable, relate_signals, signals_markdown
from cotforge.sweeps.statistics import bootstrap_interval, compare_paired

SIGNIFICANCE = 0.05


def _arms(student: str, cells: list[CellResult], sweep: SweepDir) -> tuple[dict[str, ArmResult], dict[str, list]]:
    """A student's arms, each over its seeds, and per arm the score of each question (the mean over seeds)."""
    by_arm: dict[str, list[CellResult]] = {}
    for cell in cells:
        if cell.student == student:
            by_arm.setdefault(cell.arm, []).append(cell)
    # Per question, the mean over seeds: every cell answered the same questions in the same order.
    per_question = {
        arm: [statistics.fmean(q) for q in zip(*(scores(sweep.file(c.predictions)) for c in group), strict=True)]
        for arm, group in by_arm.items()
    }
    results = {}
    for arm, group in by_arm.items():
        accuracies = [c.accuracy for c in group]
        results[arm] = ArmResult(
            student=student,
            arm=arm,
            level=group[0].level,
            seeds=len(group),
            accuracy=statistics.fmean(accuracies),
            accuracy_std=statistics.stdev(accuracies) if len(accuracies) > 1 else None,
            interval=bootstrap_interval(per_question[arm]),
            mean_rationale_words=group[0].mean_rationale_words,
        )
    return results, per_question


def _recommend(results: dict[str, ArmResult], per_question: dict[str, list]) -> str:
    """The best arm, each other compared with it on the same questions (vs_best filled in), as one sentence."""
    best = max(results, key=lambda a: (results[a].accuracy, -len(a)))
    tied = []
    for arm, result in results.items():
        if arm == best:
            continue
        paired = compare_paired(per_question[best], per_question[arm])
        result.vs_best = {
            "difference": paired.difference,
            "low": paired.interval[0],
            "high": paired.interval[1],
            "p_bootstrap": paired.p_bootstrap,
            "p_mcnemar": paired.p_mcnemar,
        }
        # Both tests must agree: with few questions answered differently, the bootstrap alone is too eager.
        result.indistinguishable_from_best = max(paired.p_bootstrap, paired.p_mcnemar) >= SIGNIFICANCE
        if result.indistinguishable_from_best:
            tied.append(arm)
    top = results[best]
    text = f"best: {best} ({top.accuracy:.1%}, 95% interval {top.interval[0]:.1%} to {top.interval[1]:.1%})"
    if len(tied) == len(results) - 1:
        return text + f"; no arm is distinguishable from it at the 5% level ({len(per_question[best])} questions)"
    if tied:
        return text + f"; not distinguishable from it at the 5% level: {', '.join(tied)}"
    return text + "; every other arm is worse at the 5% level"


def build_report(out_dir: Path) -> SweepReport:
    """Merge every finished cell (all shards) into sweep_report.json, sweep_report.md and sweep.png."""
    sweep = SweepDir(out_dir)
    if not sweep.settings_path.exists():
        raise SweepError(f"{out_dir}: not a sweep folder (no {sweep.settings_path.name})")
    settings = SweepSettings.model_validate_json(sweep.settings_path.read_text(encoding="utf-8"))
    held_out = json.loads(sweep.held_out_path.read_text(encoding="utf-8"))
    cells = [CellResult.model_validate_json(p.read_text(encoding="utf-8")) for p in sweep.finished_cells()]
    if not cells:
        raise SweepError(f"{out_dir}: no finished cell yet")
    arms: list[ArmResult] = []
    recommendation: dict[str, str] = {}
    for student in settings.students:
        results, per_question = _arms(student, cells, sweep)
        if results:
            recommendation[student] = _recommend(results, per_question)
            arms += results.values()
    report = SweepReport(
        settings=settings,
        held_out=held_out["check"],
        steps=cells[0].steps,
        cells=cells,
        arms=arms,
        recommendation=recommendation,
        signals=_signals(settings, cells, arms),
    )
    sweep.report_json.write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    sweep.report_md.write_text(render_markdown(report), encoding="utf-8")
    png = plot_png(report)
    if png is not None:
        sweep.plot_path.write_bytes(png)
    return report


def _signals(settings: SweepSettings, cells: list[CellResult], arms: list[ArmResult]) -> SignalsTable | None:
    """The arms beside their corpus's quality signals; None when the corpus can no longer be read."""
    try:
        return relate_signals(Path(settings.corpus), cells, {(a.student, a.arm): a.accuracy for a in arms})
    except BuildDirError:
        return None


def _percent(value: float) -> str:
    return f"{value:.1%}"


def render_markdown(report: SweepReport) -> str:
    s = report.settings
    lines = [
        f"# Sweep: which {s.vary} for which student",
        "",
        f"Corpus `{s.corpus}`; {report.held_out['training_problems']} training problems shared by every arm, "
        f"{report.held_out['questions']} held-out questions ("
        + (
            f"{s.eval_benchmark} {s.eval_split}"
            if s.eval_benchmark
            else f"hash-ordered from the corpus's problems: {s.holdout:.0%}"
            + (f", at most {s.eval_limit}" if s.eval_limit else "")
        )
        + f"); {report.steps} steps per cell, lr {s.train.learning_rate:g}, global batch {s.train.global_batch_size}, "
        f"max length {s.train.max_length}, seeds {', '.join(map(str, s.seeds))}.",
        "",
        "| student | arm | accuracy | 95% interval | vs best (paired) | p bootstrap / McNemar | rationale words |",
        "|---|---|---:|---|---|---:|---:|",
    ]
    for arm in report.arms:
        spread = f" ± {_percent(arm.accuracy_std)}" if arm.accuracy_std is not None else ""
        if arm.vs_best is None:
            versus, p = "best", ""
        else:
            versus = f"{arm.vs_best['difference']:+.1%} [{arm.vs_best['low']:+.1%}, {arm.vs_best['high']:+.1%}]" + (
                "" if arm.indistinguishable_from_best else " *"
            )
            p = f"{arm.vs_best['p_bootstrap']:.3f} / {arm.vs_best['p_mcnemar']:.3f}"
        lines.append(
            f"| {student_label(arm.student, s.gguf_file)} | {arm.arm} | {_percent(arm.accuracy)}{spread} | "
            f"{_percent(arm.interval[0])} to {_percent(arm.interval[1])} | {versus} | {p} | "
            f"{arm.mean_rationale_words:.0f} |"
        )
    lines += [
        "",
        "`*`: worse than the best arm at the 5% level: both the paired bootstrap and McNemar's exact test over the same"
        " questions say so.",
        "",
    ]
    for student, text in report.recommendation.items():
        lines.append(f"- **{student_label(student, s.gguf_file)}**: {text}")
    if report.signals is not None:
        lines += ["", signals_markdown(report.signals, lambda student: student_label(student, s.gguf_file)).rstrip()]
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
