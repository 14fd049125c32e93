"""`cotforge sweep`: which granularity (or format, or teacher) suits this student?

One cell per (student, arm, seed): an arm is one subset of the corpus (a level, a format or a teacher; the paper's
answer-only and human baselines when present). Every cell trains on the same problems with the same settings and
step budget, and is evaluated on the same held-out questions, never seen in training. A cell's `cell.json` is its
record: a re-run skips finished cells, and `--shard i/N` runs a slice so a job array runs them in parallel. The
report states each accuracy with a bootstrap interval, compares the best arm with each other on the same questions,
and names the arms that cannot be told apart from the best.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cotforge.contamination import check, normalise_question
from cotforge.corpus import BuildDir, BuildDirError, EvalDir, StudentDir
from cotforge.schemas.problem import Problem
from cotforge.schemas.recipe import SourceSpec, teacher_label
from cotforge.schemas.record import CoTRecord
from cotforge.train.config import TrainConfig
from cotforge.train.stats import bootstrap_interval, compare_paired

SETTINGS_FILE = "sweep.json"
CELL_FILE = "cell.json"
REPORT_JSON = "sweep_report.json"
REPORT_MD = "sweep_report.md"
PLOT_FILE = "sweep.png"
CELLS_DIR = "cells"
BASELINES = {"answer-only": 0, "human": None}  # the paper's baselines: teacher label -> the level they stand for
SIGNIFICANCE = 0.05
Axis = Literal["granularity", "format", "teacher"]


class SweepError(ValueError):
    """A sweep that cannot run as asked; the message names the option."""


class SweepSettings(BaseModel):
    """What decides a sweep's numbers. Saved in sweep.json: a re-run in the same folder must ask for the same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: str = Field(description="The build directory the arms come from")
    students: list[str] = Field(min_length=1)
    vary: Axis = "granularity"
    teacher: str | None = Field(default=None, description="Fixed teacher (vary granularity or format)")
    format: str | None = Field(default=None, description="Fixed format (vary granularity or teacher)")
    level: int | None = Field(default=None, description="Fixed level (vary format or teacher)")
    levels: list[int] | None = Field(default=None, description="Only these levels (vary granularity)")
    baselines: bool = True
    eval_benchmark: str | None = None
    eval_split: str = "test"
    holdout: float | None = Field(default=0.3, gt=0, lt=1)
    eval_limit: int | None = Field(default=None, gt=0)
    seeds: list[int] = Field(default=[1], min_length=1)
    train: TrainConfig = Field(
        description="The trainer's settings for every cell; each cell sets its own student, data, seed and folder "
        "(CELL_DECIDES)"
    )
    max_new_tokens: int = Field(default=256, gt=0)
    eval_batch_size: int = Field(default=16, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _default_training(cls, data: Any) -> Any:
        if isinstance(data, dict) and "train" not in data and data.get("students") and data.get("corpus"):
            data = data | {"train": sweep_train_config(data["students"][0], data["corpus"])}
        return data

    @property
    def gguf_file(self) -> str | None:
        return self.train.gguf_file


# What a sweep decides for each cell, so no option sets it: the student and its data (model, dataset, subset,
# split), where the run goes (output_dir, resume, save_every, push_to_hub), the seed (--seeds), one example per row so
# the step budget means the same examples in every cell (batching), a plain model to evaluate (merge_lora); and cells
# run in one process, so there is nothing to shard (shard, cpu_offload).
CELL_DECIDES = (
    "model",
    "dataset",
    "subset",
    "split",
    "output_dir",
    "resume",
    "save_every",
    "push_to_hub",
    "seed",
    "batching",
    "merge_lora",
    "shard",
    "cpu_offload",
)
# The sweep's own defaults, on purpose: it trains many short cells on a few hundred problems, where a higher peak
# rate and smaller optimizer steps let a cell learn within its step budget, and 512 tokens hold a rationale of any
# level. Every other trainer setting is TrainConfig's default.
SWEEP_DEFAULTS: dict[str, Any] = {"learning_rate": 1e-4, "global_batch_size": 16, "max_length": 512}


def sweep_train_config(
    student: str, corpus: str, config_class: type[TrainConfig] = TrainConfig, **settings: Any
) -> TrainConfig:
    """The trainer settings of a sweep: SWEEP_DEFAULTS under the settings given; `student` and `corpus` stand in for
    what each cell sets itself."""
    return config_class(model=student, dataset=corpus, **{**SWEEP_DEFAULTS, **settings})


@dataclass(frozen=True)
class Arm:
    """One value of the varied axis: a subset of the corpus."""

    label: str  # g5, human, answer-only, rar, gpt-4o ...
    subset: str
    level: int | None  # where it sits on the granularity axis (answer-only: 0; human: none)


def student_label(student: str, gguf_file: str | None = None) -> str:
    """A short name for a student: its GGUF file's stem when it is loaded from one (the folder is a package's)."""
    return teacher_label(Path(gguf_file).stem if gguf_file else student)


@dataclass(frozen=True)
class Cell:
    student: str
    arm: Arm
    seed: int
    label: str  # the student's short name

    @property
    def name(self) -> str:
        return f"{self.label}--{self.arm.label}--seed{self.seed}"


@dataclass
class SweepPlan:
    settings: SweepSettings
    arms: list[Arm]
    train: dict[str, list[CoTRecord]]  # arm label -> one record per training problem, the same problems in each
    test: list[Problem]
    held_out: dict[str, int]  # what the held-out check found

    @property
    def cells(self) -> list[Cell]:
        s = self.settings
        return [
            Cell(student, arm, seed, student_label(student, s.gguf_file))
            for student in s.students
            for arm in self.arms
            for seed in s.seeds
        ]

    def steps(self) -> int:
        """The step budget every cell gets: one example per row, so it depends only on the shared problems."""
        t = self.settings.train
        if t.max_steps is not None:
            return t.max_steps
        problems = len(next(iter(self.train.values())))
        return max(1, math.ceil(t.epochs * problems / t.global_batch_size))


# ---- the arms and the shared problems -------------------------------------------------------------------------


def _describe(records: list[CoTRecord]) -> tuple[str, int | None, str]:
    first = records[0]
    return first.teacher, first.granularity, first.format.value


def choose_arms(subsets: dict[str, list[CoTRecord]], settings: SweepSettings) -> list[Arm]:
    """The subsets that differ only in the varied axis, plus the baselines when varying granularity."""
    described = {name: _describe(rows) for name, rows in subsets.items() if rows}
    teachers = {t for t, _, _ in described.values() if t not in BASELINES}
    if settings.vary == "granularity":
        fmt = settings.format or "cot"
        by_teacher = Counter(
            t for t, level, f in described.values() if f == fmt and level is not None and t in teachers
        )
        teacher = settings.teacher or (min(by_teacher, key=lambda t: (-by_teacher[t], t)) if by_teacher else None)
        arms = [
            Arm(f"g{level}", name, level)
            for name, (t, level, f) in described.items()
            if t == teacher and f == fmt and level is not None and (settings.levels is None or level in settings.levels)
        ]
        if settings.baselines:
            arms += [
                Arm(t, name, BASELINES[t])
                for name, (t, _, f) in described.items()
                if t in BASELINES
                and f == fmt
                and (settings.levels is None or BASELINES[t] is None or 0 in settings.levels)
            ]
        arms.sort(key=lambda a: (a.level is None, a.level or 0, a.label))
        what = f"teacher {teacher}, format {fmt}"
    else:
        fixed_level = settings.level
        if settings.vary == "format":
            teacher = settings.teacher or (sorted(teachers)[0] if teachers else None)
            levels = Counter(level for t, level, _ in described.values() if t == teacher)
            fixed_level = fixed_level if fixed_level is not None else max(levels, key=lambda v: (levels[v], v or 0))
            arms = [
                Arm(f, name, level)
                for name, (t, level, f) in described.items()
                if t == teacher and level == fixed_level
            ]
            what = f"teacher {teacher}, level {fixed_level}"
        else:
            fmt = settings.format or "cot"
            fixed_level = fixed_level if fixed_level is not None else 5
            arms = [
                Arm(t, name, level)
                for name, (t, level, f) in described.items()
                if t in teachers and f == fmt and level == fixed_level
            ]
            what = f"level {fixed_level}, format {fmt}"
        arms.sort(key=lambda a: a.label)
    if len(arms) < 2:
        raise SweepError(
            f"--vary {settings.vary}: the corpus has {len(arms)} subset(s) for {what} "
            f"(its subsets: {', '.join(sorted(subsets))}); a sweep compares at least two"
        )
    return arms


def _hash_ordered(ids: set[str]) -> list[str]:
    """The ids in an order fixed by their content alone: the same hold-out on every machine and every re-run."""
    return sorted(ids, key=lambda i: hashlib.sha256(f"holdout:{i}".encode()).hexdigest())


def plan_sweep(settings: SweepSettings) -> SweepPlan:
    """Arms, the problems every arm trains on, and the held-out questions none of them sees."""
    try:
        subsets = BuildDir(settings.corpus).read_subsets()
    except BuildDirError as error:
        raise SweepError(str(error)) from None
    datasets = {r.dataset for rows in subsets.values() for r in rows}
    if len(datasets) > 1:
        raise SweepError(f"{settings.corpus}: holds {', '.join(sorted(datasets))}; a sweep studies one data set")
    arms = choose_arms(subsets, settings)
    per_arm = {}
    for arm in arms:
        first: dict[str, CoTRecord] = {}
        for record in subsets[arm.subset]:
            first.setdefault(record.problem_id, record)  # one rationale per problem in every arm
        per_arm[arm.label] = first
    shared = set.intersection(*(set(rows) for rows in per_arm.values()))
    if settings.eval_benchmark is not None:
        from cotforge.recipes.sources import load_problems

        test = load_problems(
            SourceSpec(dataset=settings.eval_benchmark, split=settings.eval_split), limit=settings.eval_limit
        ).problems
        train_ids = shared
    else:
        assert settings.holdout is not None
        ordered = _hash_ordered(shared)
        cut = max(1, round(settings.holdout * len(ordered)))
        if settings.eval_limit is not None:
            cut = min(cut, settings.eval_limit)
        any_arm = per_arm[arms[0].label]
        test = [any_arm[i].problem() for i in sorted(ordered[:cut])]
        train_ids = set(ordered[cut:])
    # Never train on a held-out question: the same text under another id counts, and so does a shared 8-gram
    # against a benchmark (the contamination check's rule); within one data set, exact matches only, since its
    # questions share template wording.
    sample = [per_arm[arms[0].label][i] for i in train_ids]
    overlaps = check(sample, {"held-out": [p.question for p in test]}).overlaps
    dropped = {o.problem_id for o in overlaps if o.kind == "exact" or settings.eval_benchmark is not None}
    train_ids -= dropped
    test_questions = {normalise_question(p.question) for p in test}
    train = {label: [rows[i] for i in sorted(train_ids)] for label, rows in per_arm.items()}
    assert not any(normalise_question(r.question) in test_questions for rows in train.values() for r in rows)
    if not train_ids or not test:
        raise SweepError(f"{settings.corpus}: {len(train_ids)} training and {len(test)} held-out problems left")
    held_out = {
        "questions": len(test),
        "training_problems": len(train_ids),
        "dropped_from_training": len(dropped),
        "ngram_overlaps_kept": sum(o.kind == "ngram" for o in overlaps) if settings.eval_benchmark is None else 0,
    }
    return SweepPlan(settings, arms, train, test, held_out)


# ---- running cells ---------------------------------------------------------------------------------------------


def _claim(out_dir: Path, settings: SweepSettings) -> None:
    path = out_dir / SETTINGS_FILE
    if path.exists():
        earlier = SweepSettings.model_validate_json(path.read_text(encoding="utf-8"))
        if earlier != settings:
            changed = [k for k in SweepSettings.model_fields if getattr(earlier, k) != getattr(settings, k)]
            raise SweepError(
                f"{out_dir} holds a sweep with other settings ({', '.join(changed)}); give another --out, or the "
                "same settings to resume it"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(settings.model_dump_json(indent=1) + "\n", encoding="utf-8")


def run_cell(plan: SweepPlan, cell: Cell, out_dir: Path, log: Callable[[str], None], keep_model: bool) -> dict:
    """Train and evaluate one cell; its cell.json, written last, marks it finished."""
    from cotforge.train.evaluate import evaluate_problems
    from cotforge.train.loop import train

    s = plan.settings
    folder = out_dir / CELLS_DIR / cell.name
    if folder.exists():
        shutil.rmtree(folder)  # a cell killed half-way starts again from nothing
    records = plan.train[cell.arm.label]
    BuildDir(folder / "data").write_outputs(records, [])
    started = time.monotonic()
    cell_settings = {
        "model": cell.student,
        "dataset": str(folder / "data"),
        "output_dir": str(folder / "model"),
        "max_steps": plan.steps(),
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
        plan.test,
        max_new_tokens=s.max_new_tokens,
        batch_size=s.eval_batch_size,
        out_dir=folder,
        log=log,
    )
    predictions = EvalDir(folder).predictions_path
    scores = _scores(predictions)
    result = {
        "name": cell.name,
        "student": cell.student,
        "arm": cell.arm.label,
        "subset": cell.arm.subset,
        "level": cell.arm.level,
        "seed": cell.seed,
        "steps": report.steps,
        "train_examples": report.examples,
        "completion_tokens": report.truncation.get("completion_tokens"),
        "final_loss": report.history[-1].loss if report.history else None,
        "mean_rationale_words": statistics.fmean(len(r.rationale.split()) for r in records),
        "accuracy": evaluation.correct / evaluation.total,
        "interval": list(bootstrap_interval(scores)),  # the report's resampling: with one seed, its interval
        "correct": evaluation.correct,
        "total": evaluation.total,
        "parsed": evaluation.parsed,
        "train_wall_s": round(trained - started, 1),
        "eval_wall_s": round(evaluation.wall_time_s, 1),
        "predictions": predictions.relative_to(out_dir).as_posix(),
    }
    if not keep_model:
        shutil.rmtree(folder / "model", ignore_errors=True)
    (folder / CELL_FILE).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def _scores(predictions: Path) -> list[float]:
    import polars as pl

    return [float(c) for c in pl.read_parquet(predictions)["correct"].to_list()]


def run_sweep(
    settings: SweepSettings,
    out_dir: Path,
    *,
    shard: tuple[int, int] = (0, 1),
    keep_models: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[SweepPlan, list[Cell]]:
    """Run this shard's unfinished cells; returns the plan and the cells still unfinished (any shard)."""
    plan = plan_sweep(settings)
    _claim(out_dir, settings)
    train_ids = [r.problem_id for r in next(iter(plan.train.values()))]
    record = {"check": plan.held_out, "problem_ids": [p.id for p in plan.test], "train_problem_ids": train_ids}
    (out_dir / "held_out.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    index, count = shard
    cells = plan.cells
    for position, cell in enumerate(cells):
        if position % count != index:
            continue
        if (out_dir / CELLS_DIR / cell.name / CELL_FILE).exists():
            log(f"cell {position + 1}/{len(cells)} {cell.name}: finished earlier, kept")
            continue
        problems = len(plan.train[cell.arm.label])
        log(f"cell {position + 1}/{len(cells)} {cell.name}: training {plan.steps()} steps on {problems} problems")
        result = run_cell(plan, cell, out_dir, log, keep_models)
        low, high = result["interval"]
        log(
            f"cell {position + 1}/{len(cells)} {cell.name}: accuracy {result['accuracy']:.1%} "
            f"[{low:.1%}, {high:.1%}] ({result['train_wall_s']:.0f} s training, {result['eval_wall_s']:.0f} s eval)"
        )
    unfinished = [c for c in cells if not (out_dir / CELLS_DIR / c.name / CELL_FILE).exists()]
    return plan, unfinished


# ---- the report --------------------------------------------------------------------------------------------------


class ArmResult(BaseModel):
    student: str
    arm: str
    level: int | None
    seeds: int
    accuracy: float = Field(description="Mean over seeds")
    accuracy_std: float | None = Field(description="Standard deviation over seeds; none with one seed")
    interval: tuple[float, float] = Field(description="95% bootstrap interval over test questions")
    mean_rationale_words: float
    vs_best: dict[str, float] | None = Field(
        default=None, description="Paired comparison with the student's best arm: difference, interval, p-values"
    )
    indistinguishable_from_best: bool = True


class SweepReport(BaseModel):
    settings: SweepSettings
    held_out: dict[str, int]
    steps: int
    cells: list[dict]
    arms: list[ArmResult]
    recommendation: dict[str, str]


def build_report(out_dir: Path) -> SweepReport:
    """Merge every finished cell (all shards) into sweep_report.json, sweep_report.md and sweep.png."""
    settings_path = out_dir / SETTINGS_FILE
    if not settings_path.exists():
        raise SweepError(f"{out_dir}: not a sweep folder (no {SETTINGS_FILE})")
    settings = SweepSettings.model_validate_json(settings_path.read_text(encoding="utf-8"))
    held_out = json.loads((out_dir / "held_out.json").read_text(encoding="utf-8"))
    cells = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out_dir / CELLS_DIR).glob(f"*/{CELL_FILE}"))]
    if not cells:
        raise SweepError(f"{out_dir}: no finished cell yet")
    arms: list[ArmResult] = []
    recommendation: dict[str, str] = {}
    for student in settings.students:
        mine = [c for c in cells if c["student"] == student]
        by_arm: dict[str, list[dict]] = {}
        for cell in mine:
            by_arm.setdefault(cell["arm"], []).append(cell)
        # Per question, the mean over seeds: every cell answered the same questions in the same order.
        scores = {
            arm: [statistics.fmean(q) for q in zip(*(_scores(out_dir / c["predictions"]) for c in group), strict=True)]
            for arm, group in by_arm.items()
        }
        results = {}
        for arm, group in by_arm.items():
            accuracies = [c["accuracy"] for c in group]
            results[arm] = ArmResult(
                student=student,
                arm=arm,
                level=group[0]["level"],
                seeds=len(group),
                accuracy=statistics.fmean(accuracies),
                accuracy_std=statistics.stdev(accuracies) if len(accuracies) > 1 else None,
                interval=bootstrap_interval(scores[arm]),
                mean_rationale_words=group[0]["mean_rationale_words"],
            )
        if not results:
            continue
        best = max(results, key=lambda a: (results[a].accuracy, -len(a)))
        tied = []
        for arm, result in results.items():
            if arm == best:
                continue
            paired = compare_paired(scores[best], scores[arm])
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
            questions = len(scores[best])
            text += f"; no arm is distinguishable from it at the 5% level ({questions} questions)"
        elif tied:
            text += f"; not distinguishable from it at the 5% level: {', '.join(tied)}"
        else:
            text += "; every other arm is worse at the 5% level"
        recommendation[student] = text
        arms += results.values()
    report = SweepReport(
        settings=settings,
        held_out=held_out["check"],
        steps=cells[0]["steps"],
        cells=cells,
        arms=arms,
        recommendation=recommendation,
    )
    (out_dir / REPORT_JSON).write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    (out_dir / REPORT_MD).write_text(render_markdown(report), encoding="utf-8")
    png = plot_png(report)
    if png is not None:
        (out_dir / PLOT_FILE).write_bytes(png)
    return report


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
    return "\n".join(lines) + "\n"


def plot_png(report: SweepReport) -> bytes | None:
    """Accuracy against granularity, one line per student (the paper's figure), and rationale length per level."""
    if report.settings.vary != "granularity":
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for student in report.settings.students:
        points = sorted((a.level, a) for a in report.arms if a.student == student and a.level is not None)
        if not points:
            continue
        xs = [level for level, _ in points]
        ys = [a.accuracy for _, a in points]
        errors = [[a.accuracy - a.interval[0] for _, a in points], [a.interval[1] - a.accuracy for _, a in points]]
        line = left.errorbar(
            xs, ys, yerr=errors, marker="o", capsize=3, label=student_label(student, report.settings.gguf_file)
        )
        for arm in report.arms:
            if arm.student == student and arm.level is None:  # the human baseline: a level of its own
                left.axhline(
                    arm.accuracy,
                    linestyle="--",
                    color=line[0].get_color(),
                    alpha=0.6,
                    label=f"{student_label(student, report.settings.gguf_file)}: {arm.arm}",
                )
    left.set_xlabel("granularity level (0: answer only)")
    left.set_ylabel("held-out accuracy")
    left.set_xticks(range(0, 7))
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    words = sorted({(a.level, a.mean_rationale_words) for a in report.arms if a.level is not None})
    right.bar([w[0] for w in words], [w[1] for w in words], color="grey")
    right.set_xlabel("granularity level")
    right.set_ylabel("mean rationale length (words)")
    right.set_xticks(range(0, 7))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def push_to_card(out_dir: Path, repo_id: str) -> str:
    """Add a finished sweep's report (and its plot) as the `sweep` section of a dataset repo's card, the data
    untouched; returns the commit. Raises HubError."""
    from cotforge.hub import push_card_section

    body = (out_dir / REPORT_MD).read_text(encoding="utf-8").split("\n", 2)[2]  # without the file's own title
    section = (
        "## Which granularity for which student\n\n"
        + body
        + "\n![Held-out accuracy by granularity level](sweep/accuracy.png)\n"
    )
    plot = out_dir / PLOT_FILE
    return push_card_section(
        repo_id, "sweep", section, {"sweep/accuracy.png": plot.read_bytes()} if plot.exists() else {}
    )
