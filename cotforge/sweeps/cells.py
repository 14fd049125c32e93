"""Running cells: each trains one student on one arm with one seed, then answers the held-out questions. A cell's
cell.json (its CellResult), written last, marks it finished: a re-run skips it, and shards share the folder. Cells
run in rounds (run_cells) on an executor (executors.py): in this process, N at once on this machine, or on Ray."""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from cotforge.corpus import BuildDir, EvalDir, StudentDir
from cotforge.schemas.problem import Problem
from cotforge.schemas.record import CoTRecord
from cotforge.sweeps.executors import CellFailure, Executor, Serial
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.planning import Cell, SweepPlan, plan_sweep
from cotforge.sweeps.settings import SweepError, SweepSettings
from cotforge.sweeps.statistics import bootstrap_interval


class CellResult(BaseModel):
    """What one finished cell measured (cell.json)."""

    name: str
    student: str
    arm: str
    subset: str
    level: int | None
    kind: str = "prompted"  # the arm's: prompted, baseline, native, condensed or mixture
    seed: int
    steps: int
    train_examples: int
    completion_tokens: int | None
    final_loss: float | None
    mean_rationale_words: float
    accuracy: float
    interval: tuple[float, float] = Field(description="95% bootstrap interval over the questions (one seed)")
    correct: int
    total: int
    parsed: int
    unclosed: int = 0  # generations whose <think> trace never closed: no answer, counted wrong
    train_wall_s: float
    eval_wall_s: float
    predictions: str = Field(description="predictions.parquet, relative to the sweep folder")


def scores(predictions: Path) -> list[float]:
    """1.0 or 0.0 per question, in the held-out order."""
    import polars as pl

    return [float(c) for c in pl.read_parquet(predictions)["correct"].to_list()]


def claim(folder: SweepDir, settings: SweepSettings) -> None:
    """Make `folder` this sweep's, or refuse a folder that holds a sweep with other settings."""
    if folder.settings_path.exists():
        text = folder.settings_path.read_text(encoding="utf-8")
        if "holdout_similarity" not in json.loads(text):
            raise SweepError(
                f"{folder} holds a sweep made before hold-outs kept near-variant questions together: resumed, its "
                "cells would be trained on other problems; give another --out (`cotforge sweep report` still reads it)"
            )
        earlier = SweepSettings.model_validate_json(text)
        if earlier != settings:
            changed = [k for k in SweepSettings.model_fields if getattr(earlier, k) != getattr(settings, k)]
            raise SweepError(
                f"{folder} holds a sweep with other settings ({', '.join(changed)}); give another --out, or the "
                "same settings to resume it"
            )
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.settings_path.write_text(settings.model_dump_json(indent=1) + "\n", encoding="utf-8")


class CellsFailed(Exception):
    """Cells that ended without a result, raised once every other cell has run: the finished ones are kept, and a
    re-run retries the failed ones."""

    def __init__(self, failures: list[CellFailure]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"cell {f.name} failed: {f.reason}" for f in failures))


@dataclass(frozen=True)
class CellJob:
    """One cell and what it needs of the plan, nothing more: it may run in another process or on another machine."""

    settings: SweepSettings
    cell: Cell
    records: list[CoTRecord]  # its arm's rows, one per training problem
    test: list[Problem]
    steps: int
    sweep: Path  # the sweep folder, absolute: a worker may start elsewhere
    keep_model: bool

    @classmethod
    def of(cls, plan: SweepPlan, cell: Cell, sweep: SweepDir, keep_model: bool) -> CellJob:
        records = plan.train[cell.arm.label]
        return cls(plan.settings, cell, records, plan.test, plan.steps(), sweep.path.resolve(), keep_model)

    @property
    def name(self) -> str:
        return self.cell.name

    def __call__(self, log: Callable[[str], None]) -> CellResult:
        return run_cell(self, log)


def run_cell(job: CellJob, log: Callable[[str], None]) -> CellResult:
    """Train and evaluate one cell; its cell.json, written last, marks it finished."""
    from cotforge.train.evaluate import evaluate_problems
    from cotforge.train.loop import train

    s, cell, records, sweep = job.settings, job.cell, job.records, SweepDir(job.sweep)
    folder = sweep.cell_dir(cell.name)
    if folder.exists():
        shutil.rmtree(folder)  # a cell killed half-way starts again from nothing
    BuildDir(folder / "data").write_outputs(records, [])
    started = time.monotonic()
    cell_settings = {
        **dict(zip(("model", "gguf_file"), s.student_source(cell.student), strict=True)),
        "dataset": str(folder / "data"),
        "output_dir": str(folder / "model"),
        "max_steps": job.steps,
        "batching": "grouped",  # one example per row: the step budget means the same examples in every cell
        "seed": cell.seed,
        "merge_lora": s.train.lora_rank is not None,  # a plain model to evaluate, whatever the base (GGUF)
    }
    config = type(s.train).model_validate(s.train.model_dump() | cell_settings)
    report = train(config, log=log)
    model = StudentDir(config.output_dir)
    trained = time.monotonic()
    evaluation = evaluate_problems(
        str(model.merged.path if s.train.lora_rank else model.path),
        job.test,
        max_new_tokens=s.max_new_tokens,
        thinking_tokens=s.thinking_tokens,
        batch_size=s.eval_batch_size,
        out_dir=folder,
        log=log,
    )
    predictions = EvalDir(folder).predictions_path
    result = CellResult(
        name=cell.name,
        student=cell.student,
        arm=cell.arm.label,
        subset=cell.arm.subset,
        level=cell.arm.level,
        kind=cell.arm.kind,
        seed=cell.seed,
        steps=report.steps,
        train_examples=report.examples,
        completion_tokens=report.truncation.get("completion_tokens"),
        final_loss=report.history[-1].loss if report.history else None,
        # What the student is shown: with --reasoning keep, a native trace counts too.
        mean_rationale_words=statistics.fmean(len(r.completion_for(s.train.reasoning).split()) for r in records),
        accuracy=evaluation.correct / evaluation.total,
        interval=bootstrap_interval([scores(predictions)]),  # the report's resampling: one seed, its interval
        correct=evaluation.correct,
        total=evaluation.total,
        parsed=evaluation.parsed,
        unclosed=evaluation.unclosed,
        train_wall_s=round(trained - started, 1),
        eval_wall_s=round(evaluation.wall_time_s, 1),
        predictions=predictions.relative_to(sweep.path).as_posix(),
    )
    if not job.keep_model:
        shutil.rmtree(model.path, ignore_errors=True)
    sweep.cell_file(cell.name).write_text(result.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return result


def run_cells(
    plan: SweepPlan,
    cells: list[Cell],
    sweep: SweepDir,
    *,
    executor: Executor | None = None,
    keep_models: bool = False,
    log: Callable[[str], None] = print,
) -> list[CellResult | CellFailure]:
    """One round: run `cells` of `plan` on `executor` (default Serial: one after another in this process) and return
    once all have ended, each with its CellResult or a CellFailure (its name and why); a failed cell never stops the
    others. The whole sweep is one round; an adaptive sweep calls this once per round."""
    jobs = [CellJob.of(plan, cell, sweep, keep_models) for cell in cells]
    where = [f"cell {i + 1}/{len(jobs)} {job.name}" for i, job in enumerate(jobs)]
    outcomes: dict[int, CellResult | CellFailure] = {}

    def started(index: int, place: str) -> None:
        job = jobs[index]
        on = f" ({place})" if place else ""
        log(f"{where[index]}: training {job.steps} steps on {len(job.records)} problems{on}")

    def finished(index: int, result: CellResult | CellFailure) -> None:
        outcomes[index] = result
        if isinstance(result, CellFailure):
            log(f"{where[index]}: failed: {result.reason}")
            return
        low, high = result.interval
        log(
            f"{where[index]}: accuracy {result.accuracy:.1%} [{low:.1%}, {high:.1%}] ({result.train_wall_s:.0f} s "
            f"training, {result.eval_wall_s:.0f} s eval)"
        )

    (executor or Serial()).run(jobs, started, finished, log)
    return [outcomes[index] for index in range(len(jobs))]


def run_sweep(
    settings: SweepSettings,
    out_dir: Path,
    *,
    shard: tuple[int, int] = (0, 1),
    keep_models: bool = False,
    executor: Executor | None = None,
    log: Callable[[str], None] = print,
) -> tuple[SweepPlan, list[Cell]]:
    """Run this shard's unfinished cells on `executor` (default: one after another here); returns the plan and the
    cells still unfinished (any shard). Raises CellsFailed, once the others have run, if any cell failed."""
    plan = plan_sweep(settings)
    sweep = SweepDir(out_dir)
    claim(sweep, settings)
    train_ids = [r.problem_id for r in next(iter(plan.train.values()))]
    record = {"check": plan.held_out, "problem_ids": [p.id for p in plan.test], "train_problem_ids": train_ids}
    sweep.held_out_path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    index, count = shard
    mine = [cell for position, cell in enumerate(plan.cells) if position % count == index]
    for cell in mine:
        if sweep.cell_file(cell.name).exists():
            log(f"{cell.name}: finished earlier, kept")
    todo = [cell for cell in mine if not sweep.cell_file(cell.name).exists()]
    outcomes = run_cells(plan, todo, sweep, executor=executor, keep_models=keep_models, log=log)
    failures = [result for result in outcomes if isinstance(result, CellFailure)]
    if failures:
        raise CellsFailed(failures)
    return plan, [c for c in plan.cells if not sweep.cell_file(c.name).exists()]
