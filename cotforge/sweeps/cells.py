"""Running cells: each trains one student on one arm with one seed, then answers the held-out questions. A cell's
cell.json (its CellResult), written last, marks it finished: a re-run skips it once it checks (read_cell), and shards
share the folder. Cells run in rounds (run_cells) on an executor (executors.py): in this process, N at once on this
machine, or on Ray."""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from cotforge.corpus import BuildDir, EvalDir, StudentDir
from cotforge.schemas.problem import Problem
from cotforge.schemas.record import CoTRecord
from cotforge.sweeps.adaptive import AdaptiveRecord, adaptive_rounds
from cotforge.sweeps.executors import CellFailure, Executor, Serial
from cotforge.sweeps.files import HeldOut, inside_sweep, read_model, write_model
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
    selection: str | None = None  # the part of the arm's records it trained on (--select), e.g. rsr:0.5
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


def predictions_path(sweep: SweepDir, cell: CellResult) -> Path:
    """The cell's predictions.parquet; SweepError when its cell.json points outside the sweep folder."""
    return inside_sweep(sweep, cell.predictions, f"{sweep.cell_file(cell.name)}: predictions")


def read_cell(sweep: SweepDir, name: str) -> CellResult:
    """The result of a finished cell, checked; SweepError says why the cell is not finished: no cell.json, a torn
    or edited one, or predictions missing, outside the sweep folder or not one row per question."""
    import polars as pl

    path = sweep.cell_file(name)
    result = read_model(path, CellResult, "the cell is run again")
    if result.name != name:
        raise SweepError(f"{path}: names the cell {result.name!r}; the cell is run again")
    predictions = predictions_path(sweep, result)
    try:
        rows = pl.scan_parquet(predictions).select(pl.len()).collect().item()
    except (OSError, pl.exceptions.PolarsError):
        raise SweepError(f"{predictions}: missing or torn; the cell is run again") from None
    if rows != result.total:
        raise SweepError(f"{predictions}: {rows} rows for {result.total} questions; the cell is run again")
    return result


def read_finished_cells(sweep: SweepDir) -> tuple[list[CellResult], dict[str, str]]:
    """Every cell that checks, and why each other cell with a cell.json is not taken as finished."""
    cells, unfinished = [], {}
    for path in sweep.finished_cells():
        try:
            cells.append(read_cell(sweep, path.parent.name))
        except SweepError as error:
            unfinished[path.parent.name] = str(error)
    return cells, unfinished


def _is_finished(sweep: SweepDir, name: str) -> bool:
    try:
        read_cell(sweep, name)
    except SweepError:
        return False
    return True


def claim(folder: SweepDir, settings: SweepSettings) -> None:
    """Make `folder` this sweep's, or refuse a folder that holds a sweep with other settings."""
    check_claim(folder, settings)
    write_model(folder.settings_path, settings)


def check_claim(folder: SweepDir, settings: SweepSettings) -> None:
    """SweepError when `folder` holds a sweep with other settings (one a run with `settings` would not resume)."""
    if folder.settings_path.exists():
        advice = "give another --out (or remove the file to start this sweep afresh there)"
        earlier = read_model(folder.settings_path, SweepSettings, advice)
        if "holdout_similarity" not in earlier.model_fields_set:
            raise SweepError(
                f"{folder} holds a sweep made before hold-outs kept near-variant questions together: resumed, its "
                "cells would be trained on other problems; give another --out (`cotforge sweep report` still reads it)"
            )
        if earlier != settings:
            before, now = earlier.flat(), settings.flat()
            changed = [name for name in now if before.get(name) != now[name]]
            raise SweepError(
                f"{folder} holds a sweep with other settings ({', '.join(changed)}); give another --out, or the "
                "same settings to resume it"
            )


def drawn_hold_out(sweep: SweepDir, settings: SweepSettings) -> HeldOut | None:
    """The hold-out drawn from the corpus for this folder's finished cells (held_out.json) when they ran with
    `settings`: a resumed sweep keeps it, so its cells are never mixed with cells trained or evaluated on other
    problems. None: draw one."""
    if settings.eval_benchmark is not None or not (sweep.finished_cells() and sweep.held_out_path.exists()):
        return None
    try:
        if SweepSettings.model_validate_json(sweep.settings_path.read_text(encoding="utf-8")) != settings:
            return None  # claim() refuses the folder
    except (OSError, ValidationError):
        return None  # claim() says why
    return read_model(sweep.held_out_path, HeldOut, "give another --out")


def record_held_out(sweep: SweepDir, plan: SweepPlan) -> None:
    """Write held_out.json: the held-out check, the test and training problems and (a hold-out drawn from the
    corpus) the test problems' groups."""
    train_ids = [r.problem_id for r in next(iter(plan.train.values()))]
    held_out = HeldOut(
        check=plan.held_out,
        problem_ids=[p.id for p in plan.test],
        train_problem_ids=train_ids,
        question_groups=plan.question_groups,
    )
    write_model(sweep.held_out_path, held_out)


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
        records = plan.records(cell.student, cell.arm)
        return cls(plan.settings, cell, records, plan.test, plan.steps(), sweep.path.resolve(), keep_model)

    @property
    def name(self) -> str:
        return self.cell.name

    def __call__(self, log: Callable[[str], None]) -> CellResult:
        return run_cell(self, log)


def run_cell(job: CellJob, log: Callable[[str], None]) -> CellResult:
    """Train and evaluate one cell; its cell.json, written last, marks it finished."""
    from cotforge.train.config import Output, Student, TrainConfig, TrainData
    from cotforge.train.evaluate import evaluate_problems
    from cotforge.train.loop import train

    s, cell, records, sweep = job.settings, job.cell, job.records, SweepDir(job.sweep)
    folder = sweep.cell_dir(cell.name)
    if folder.exists():
        shutil.rmtree(folder)  # a cell killed half-way starts again from nothing
    BuildDir(folder / "data").write_outputs(records, [])
    started = time.monotonic()
    model, gguf_file = s.student_source(cell.student)
    config = TrainConfig(
        # One example per row: the step budget means the same examples in every cell.
        data=TrainData(dataset=str(folder / "data"), batching="grouped", seed=cell.seed),
        student=Student(model=model, gguf_file=gguf_file),
        adapter=s.adapter,
        rendering=s.rendering,
        optimisation=s.optimisation.model_copy(update={"max_steps": job.steps}),
        execution=s.execution,
        # A plain model to evaluate, whatever the base (GGUF).
        output=Output(output_dir=str(folder / "model"), merge_lora=s.adapter.lora_rank is not None),
    )
    report = train(config, log=log)
    student = StudentDir(config.output.output_dir)
    trained = time.monotonic()
    evaluation = evaluate_problems(
        str(student.merged.path if s.adapter.lora_rank else student.path),
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
        selection=cell.arm.selection.text if cell.arm.selection else None,
        seed=cell.seed,
        steps=report.steps,
        train_examples=report.examples,
        completion_tokens=report.truncation.get("completion_tokens"),
        final_loss=report.history[-1].loss if report.history else None,
        # What the student is shown: with --reasoning keep, a native trace counts too.
        mean_rationale_words=statistics.fmean(len(r.completion_for(s.rendering.reasoning).split()) for r in records),
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
        shutil.rmtree(student.path, ignore_errors=True)
    write_model(sweep.cell_file(cell.name), result)  # last, where the cell ran: the cell is finished
    return result


def seed_scores(student: str, cells: list[CellResult], sweep: SweepDir) -> dict[str, dict[int, list[float]]]:
    """Per arm, each finished seed's per-question scores (every cell answered the same questions in order)."""
    by_arm: dict[str, dict[int, list[float]]] = {}
    for cell in sorted(cells, key=lambda c: c.seed):
        if cell.student == student:
            by_arm.setdefault(cell.arm, {})[cell.seed] = scores(predictions_path(sweep, cell))
    return by_arm


def question_groups(held_out: HeldOut, questions: int | None = None) -> list[int] | None:
    """The hold-out's near-variant group of each held-out question (held_out.json's question_groups), when the sweep
    recorded them: absent in older sweeps and for an external --eval benchmark."""
    groups = held_out.question_groups
    if groups is None:
        return None
    if questions is not None and len(groups) != questions:
        raise SweepError(f"held_out.json: question_groups has {len(groups)} entries for {questions} held-out questions")
    return groups


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
    predict: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[SweepPlan, list[Cell]]:
    """Run this shard's unfinished cells on `executor` (default: one after another here; an adaptive sweep: its
    rounds), after scoring every arm first with `predict`, settings.prune or an arm selected by score; returns the
    plan and the cells still unfinished (any shard; none it chose not to run). Raises CellsFailed, once the others
    of its round have run, if any cell failed."""
    from cotforge.sweeps.predict import predict_and_prune  # its statistics import this module

    if settings.adaptive and shard != (0, 1):
        raise SweepError("--adaptive decides each round from the one before: run it without --shard")
    sweep = SweepDir(out_dir)
    plan = plan_sweep(settings, drawn_hold_out(sweep, settings))
    claim(sweep, settings)
    record_held_out(sweep, plan)

    def run_round(cells: list[Cell]) -> None:
        todo = []
        for cell in cells:
            try:
                read_cell(sweep, cell.name)
                log(f"{cell.name}: finished earlier, kept")
            except SweepError as error:
                if sweep.cell_file(cell.name).exists():
                    log(f"{cell.name}: not finished: {error}")
                todo.append(cell)
        outcomes = run_cells(plan, todo, sweep, executor=executor, keep_models=keep_models, log=log)
        failures = [result for result in outcomes if isinstance(result, CellFailure)]
        if failures:
            raise CellsFailed(failures)

    scoring = predict or settings.prune or plan.selects_by_score
    pruned = predict_and_prune(plan, sweep, log) if scoring else []
    if settings.adaptive:
        skipped = adaptive_rounds(
            plan,
            run_round,
            lambda student: {
                arm: list(s.values()) for arm, s in seed_scores(student, read_finished_cells(sweep)[0], sweep).items()
            },
            plan.question_groups,
            pruned,
        )
        write_model(sweep.adaptive_path, AdaptiveRecord(skipped=skipped))
        not_run = {c.name for c in skipped}
        return plan, [c for c in plan.cells if c.name not in not_run and not _is_finished(sweep, c.name)]
    if pruned:
        write_model(sweep.adaptive_path, AdaptiveRecord(skipped=pruned))
    not_run = {c.name for c in pruned}
    index, count = shard
    run_round([c for position, c in enumerate(plan.cells) if position % count == index and c.name not in not_run])
    return plan, [c for c in plan.cells if c.name not in not_run and not _is_finished(sweep, c.name)]
