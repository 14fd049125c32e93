"""The page of a sweep folder: its report table and recommendation, accuracy against level, and per held-out question
which cells got it right with each cell's prediction (a page of questions at a time, read from each cell's
predictions.parquet)."""

from __future__ import annotations

from collections import defaultdict

import polars as pl

from cotforge.sweeps.cells import CellResult, predictions_path, read_finished_cells
from cotforge.sweeps.files import read_model
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.results import SweepReport
from cotforge.sweeps.settings import SweepError
from cotforge.view.html import layout, line_plot, link, number, table, text
from cotforge.view.reader import PAGE_SIZE, last_page, within_folder

NAV = (("/", "Sweep"),)


def is_sweep(sweep: SweepDir) -> bool:
    return sweep.settings_path.is_file()


def _cells(sweep: SweepDir) -> tuple[list[CellResult], dict[str, str]]:
    """The finished cells (those whose files check: never a file outside the sweep folder), and why others are not."""
    cells, unfinished = read_finished_cells(sweep)
    return sorted(cells, key=lambda c: (c.student, c.level is None, c.level or 0, c.arm, c.seed)), unfinished


def sweep_page(sweep: SweepDir, page: int) -> str:
    body = [f"<p>{text(sweep.path.resolve())}</p>"]
    report = None
    if sweep.report_json.is_file():
        try:
            report = read_model(sweep.report_json, SweepReport, "`cotforge sweep report` writes it again")
        except SweepError as error:
            body.append(f"<p class=bad>{text(within_folder(str(error), sweep.path))}</p>")
    cells, unfinished = _cells(sweep)
    body += [f"<p class=bad>{text(within_folder(why, sweep.path))}</p>" for why in unfinished.values()]
    if report is None:
        body.append(
            f"<p>No {text(sweep.report_json.name)} yet: <code>cotforge sweep report {text(sweep.path)}</code> "
            f"merges the {len(cells)} finished cells.</p>"
        )
    else:
        body.append(_report(report))
    if cells:
        body.append(_questions(sweep, cells, page))
    return layout("Sweep", "".join(body), NAV, "/")


def _report(report: SweepReport) -> str:
    rows = []
    for arm in report.arms:
        seeds = ", ".join(f"{a:.1%}" for a in arm.seed_accuracies.values())
        if arm.missing_seeds:
            seeds += f" (seed {', '.join(map(str, arm.missing_seeds))} unfinished)"
        rows.append(
            [
                text(arm.student),
                text(arm.arm),
                text("-" if arm.level is None else arm.level),
                text(seeds or arm.seeds),
                number(arm.accuracy, ".1%"),
                text(f"{arm.interval[0]:.1%} to {arm.interval[1]:.1%}"),
                text("" if arm.mcs_p is None else f"{arm.mcs_p:.3f}"),
                text("yes" if arm.could_be_best else "no"),
                number(arm.mean_rationale_words, ",.0f"),
            ]
        )
    headers = [
        "student",
        "arm",
        "level",
        "seeds",
        "accuracy",
        "95% interval",
        "MCS p",
        "could be best",
        "rationale words",
    ]
    recommendation = "".join(f"<li><b>{text(s)}</b>: {text(t)}</li>" for s, t in report.recommendation.items())
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for arm in report.arms:
        if arm.level is not None:
            series[arm.student].append((arm.level, arm.accuracy))
    plot = line_plot("Held-out accuracy by level", series, "granularity level", "accuracy", percent=True)
    held = report.held_out
    return (
        f"<p>{held.get('training_problems', 0):,} training problems shared by every arm, "
        f"{held.get('questions', 0):,} held-out questions; {report.steps} steps per cell.</p>"
        + table(headers, rows, caption="Arms")
        + f"<ul>{recommendation}</ul>"
        + plot
    )


def _questions(sweep: SweepDir, cells: list[CellResult], page: int) -> str:
    """A page of held-out questions: a row each, a column per cell (its mark and prediction)."""
    scans = {}
    for cell in cells:
        scans[cell.name] = pl.scan_parquet(predictions_path(sweep, cell)).select(
            "problem_id", "question", "gold_answer", "predicted_answer", "correct"
        )
    if not scans:
        return ""
    held_out = next(iter(scans.values())).select(pl.len()).collect().item()
    page = min(page, last_page(held_out))  # a number past the end (a stale link, one typed by hand): the last page
    frames = {name: scan.slice(page * PAGE_SIZE, PAGE_SIZE + 1).collect() for name, scan in scans.items()}
    first = next(iter(frames.values()))
    more = first.height > PAGE_SIZE
    shown = [c for c in cells if c.name in frames]
    rows = []
    for i in range(min(first.height, PAGE_SIZE)):
        question = first.row(i, named=True)
        line = [text(question["problem_id"]), f"<pre>{text(question['question'])}</pre>", text(question["gold_answer"])]
        right = 0
        for cell in shown:
            got = frames[cell.name].row(i, named=True) if i < frames[cell.name].height else None
            if got is None:
                line.append("-")
                continue
            right += bool(got["correct"])
            sign = '<span class="ok">✓</span>' if got["correct"] else '<span class="bad">✗</span>'
            line.append(f"{sign} {text(got['predicted_answer'] if got['predicted_answer'] is not None else 'none')}")
        line.insert(3, number(right))
        rows.append(line)
    headers = ["problem", "question", "gold", "cells right", *(f"{c.student} · {c.arm} · seed {c.seed}" for c in shown)]
    steps = []
    if page > 0:
        steps.append(link("/", "← previous questions", {"page": page - 1}))
    if more:
        steps.append(link("/", "next questions →", {"page": page + 1}))
    nav = f'<nav class="pages" aria-label="pages of questions">page {page + 1} {" ".join(steps)}</nav>'
    return "<h2>Held-out questions: which cells got each right</h2>" + table(headers, rows) + nav
