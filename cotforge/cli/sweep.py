"""The sweep group: `sweep` (run one, or a shard of one) and `sweep report` (merge the shards)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cotforge.cli.common import fail, fail_validation, log, out, service_code, split_commas, warn
from cotforge.cli.options import config_options, given, with_parameters
from cotforge.recipes.sources import SourceError
from cotforge.sweeps.settings import THINKING_DEFAULT
from cotforge.train.config import TrainConfig

if TYPE_CHECKING:
    from cotforge.sweeps.cells import CellsFailed

DatasetOption = Annotated[
    str | None,
    typer.Option(
        help="The corpus: a build directory, a folder of the paper's released files, or a Hub repo. Required to "
        "run a sweep (no default)"
    ),
]
StudentOption = Annotated[
    list[str] | None,
    typer.Option(help="Student model (Hub id or folder); repeatable. Required to run a sweep (no default)"),
]
OutDirOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Sweep folder; the same one resumes. Required to run a sweep (no default)"),
]
VaryOption = Annotated[str, typer.Option(help="The axis compared: granularity, format or teacher")]
LevelsOption = Annotated[
    list[str] | None, typer.Option(help="Only these levels, e.g. 1,3,5 (vary granularity). Default: all")
]
ArmOption = Annotated[
    list[str] | None,
    typer.Option(
        "--arm",
        help="Compare exactly these arms of the teacher, repeatable: g<level> (a prompted level), native (the "
        "teacher's own reasoning trace), condensed-g<level> (that trace rewritten at a level), answer-only, human, "
        "or a mixture of them with weights, e.g. --arm native:0.5+g3:0.5 (native+g3: equal shares; each problem "
        "gets one part's rationale). Default: every level of --vary granularity",
    ),
]
ThinkingTokensOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="A thinking student's budget for its <think> trace, on top of --max-new-tokens for the answer. "
        f"Default: {THINKING_DEFAULT} with --reasoning keep, else 0",
    ),
]
TeacherOption = Annotated[
    str | None, typer.Option(help="The teacher held fixed. Default: the one with the most levels")
]
FmtOption = Annotated[str | None, typer.Option("--format", help="The format held fixed. Default: cot")]
LevelOption = Annotated[
    int | None, typer.Option(help="The level held fixed (vary format or teacher). Default: the most common, or 5")
]
NoBaselinesOption = Annotated[
    bool, typer.Option("--no-baselines", help="Leave out the answer-only and human baselines")
]
EvalBenchmarkOption = Annotated[
    str | None,
    typer.Option(
        "--eval",
        help="Evaluate on this built-in benchmark's --split instead of held-out problems. "
        "Default: hold out --holdout of the corpus's problems",
    ),
]
SplitOption = Annotated[str, typer.Option(help="Split of --eval")]
HoldoutOption = Annotated[float, typer.Option(help="Share of the shared problems held out for evaluation")]
HoldoutSimilarityOption = Annotated[
    float | None,
    typer.Option(
        help="Questions at least this similar (0..1) are near-variants: held out together, never split between "
        "training and the hold-out. Default: SweepSettings.holdout_similarity, 0.8"
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the arms, cells, hold-out and the difference the sweep could detect")
]
PriorAccuracyOption = Annotated[
    float, typer.Option(help="--dry-run: the accuracy you expect of the students, for the power statement")
]
RunSdOption = Annotated[
    float | None,
    typer.Option(
        "--run-sd",
        min=0,
        max=0.99,
        help="The run-to-run SD of an arm's accuracy (a share, e.g. 0.02) from an earlier sweep's report: used in "
        "the verdict instead of this sweep's estimate (one seed has none) and in --dry-run's power. Default: estimated",
    ),
]
AdaptiveOption = Annotated[
    bool,
    typer.Option(
        "--adaptive",
        help="Run the seeds in rounds; after each, arms the verdict calls worse get no more cells, until one arm is "
        "left, --seeds run out or --cell-budget is spent",
    ),
]
PredictOption = Annotated[
    bool,
    typer.Option(
        "--predict",
        help="Before training, score every arm's training records under every student (Rank-Surprisal Ratio, as "
        "`cotforge score`) and print the predicted order; the report sets the scores beside the accuracies. Trains "
        "the same cells",
    ),
]
PruneOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Score as --predict does, then train only the K arms with the lowest RSR per student, and the "
        "answer-only and human baselines; the report lists the arms skipped. Default: train every arm",
    ),
]
SelectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        help="Beside each arm, an arm trained on the part of its records this keeps, named arm@selection; "
        "repeatable or comma-separated, e.g. --select rsr:0.5,random:0.5 (the half with the lowest Rank-Surprisal "
        "Ratio under each student, scored first as --predict does, and a random half of the same size; "
        "surprisal:F and rank:F rank by the baselines; random:F:SEED draws with another seed). Default: arms whole",
    ),
]
CellBudgetOption = Annotated[int | None, typer.Option(min=1, help="--adaptive: at most N cells. Default: no limit")]
EvalLimitOption = Annotated[int | None, typer.Option(help="At most N held-out questions. Default: all")]
SeedsOption = Annotated[str, typer.Option(help="Training seeds, comma-separated; each is a cell")]
MaxNewTokensOption = Annotated[int, typer.Option(help="Most tokens generated per held-out answer")]
ShardOption = Annotated[str, typer.Option(help="Run slice i of N of the cells (i/N), for job arrays")]
JobsOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="Cells at once on this machine, each in a process of its own: one GPU each where there are GPUs (at "
        "most one cell per GPU), else the CPU cores split between them. Not one of the sweep's settings: a resume "
        "may give another",
    ),
]
RayOption = Annotated[
    str | None,
    typer.Option(
        help="Run each cell as a Ray task, scheduled by Ray: local (start Ray here), auto (the cluster this machine "
        "is in) or a cluster's address (host:6379, ray://host:10001). A cell asks for one GPU, or --ray-cpus CPUs "
        "on a cluster without GPUs. On several machines, --out must be on a filesystem all of them share. Needs "
        "pip install 'cotforge[sweep-ray]'. Default: no Ray",
    ),
]
RayCpusOption = Annotated[int, typer.Option(min=1, help="--ray: the CPUs (torch threads) a cell asks for without GPUs")]
KeepModelsOption = Annotated[bool, typer.Option("--keep-models", help="Keep each cell's trained model")]
PushToHubOption = Annotated[
    str | None,
    typer.Option(help="Add the result as a section of this dataset repo's card (data untouched). Default: none"),
]


def sweep(
    ctx: typer.Context,
    config_class: type[TrainConfig],
    dataset: DatasetOption = None,
    student: StudentOption = None,
    out_dir: OutDirOption = None,
    vary: VaryOption = "granularity",
    levels: LevelsOption = None,
    arm: ArmOption = None,
    teacher: TeacherOption = None,
    fmt: FmtOption = None,
    level: LevelOption = None,
    no_baselines: NoBaselinesOption = False,
    eval_benchmark: EvalBenchmarkOption = None,
    split: SplitOption = "test",
    holdout: HoldoutOption = 0.3,
    holdout_similarity: HoldoutSimilarityOption = None,
    eval_limit: EvalLimitOption = None,
    seeds: SeedsOption = "1",
    max_new_tokens: MaxNewTokensOption = 256,
    thinking_tokens: ThinkingTokensOption = None,
    shard: ShardOption = "0/1",
    jobs: JobsOption = 1,
    ray: RayOption = None,
    ray_cpus: RayCpusOption = 1,
    keep_models: KeepModelsOption = False,
    push_to_hub: PushToHubOption = None,
    dry_run: DryRunOption = False,
    prior_accuracy: PriorAccuracyOption = 0.2,
    run_sd: RunSdOption = None,
    adaptive: AdaptiveOption = False,
    cell_budget: CellBudgetOption = None,
    predict: PredictOption = False,
    prune: PruneOption = None,
    select: SelectOption = None,
    **trainer: Any,
) -> None:
    """Run a sweep (or `cotforge sweep report DIR` to merge the shards of one)."""
    if ctx.invoked_subcommand is not None:
        return
    from pydantic import ValidationError

    from cotforge.fetch import fetch_corpus
    from cotforge.hub import HubError
    from cotforge.sweeps import SweepError, SweepSettings, plan_sweep, run_sweep, sweep_train_config
    from cotforge.sweeps.arms import parse_arm
    from cotforge.sweeps.cells import CellsFailed, check_claim, drawn_hold_out
    from cotforge.sweeps.executors import executor_for
    from cotforge.sweeps.layout import SweepDir
    from cotforge.sweeps.planning import describe_plan
    from cotforge.train.data import TrainDataError
    from cotforge.train.student import StudentError

    if not dataset or not student or out_dir is None:
        raise fail("give --dataset, at least one --student and --out (see cotforge sweep --help)")
    try:
        index, count = (int(part) for part in shard.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        raise fail(f"--shard {shard}: give i/N with 0 <= i < N, e.g. 0/4") from None
    try:
        executor = executor_for(jobs, ray, ray_cpus)
        for text in arm or []:
            parse_arm(text)  # a malformed arm is refused before the corpus is fetched
        corpus = str(fetch_corpus(dataset, SweepDir(out_dir).corpus_dir))
        train = sweep_train_config(student[0], corpus, config_class, **given(config_class, trainer))
        settings = SweepSettings(
            corpus=corpus,
            students=list(student),
            vary=vary,
            teacher=teacher,
            format=fmt,
            level=level,
            levels=[int(v) for v in split_commas(levels)] or None,
            arms=list(arm) if arm else None,
            baselines=not no_baselines,
            eval_benchmark=eval_benchmark,
            eval_split=split,
            holdout=None if eval_benchmark else holdout,
            **({} if holdout_similarity is None else {"holdout_similarity": holdout_similarity}),
            eval_limit=eval_limit,
            seeds=[int(v) for v in split_commas([seeds])],
            train=train,
            max_new_tokens=max_new_tokens,
            thinking_tokens=thinking_tokens,
            run_sd=run_sd,
            adaptive=adaptive,
            cell_budget=cell_budget,
            prune=prune,
            selections=split_commas(select) or None,
        )
        if dry_run:
            if not 0 < prior_accuracy < 1:
                raise fail(f"--prior-accuracy {prior_accuracy}: give a share between 0 and 1, e.g. 0.2")
            plan = plan_sweep(settings, drawn_hold_out(SweepDir(out_dir), settings))  # a resumed sweep's own
            out.print(describe_plan(plan, prior_accuracy), highlight=False, markup=False)
            if predict or prune:  # the scores are written into the folder: never another sweep's
                from cotforge.sweeps.predict import predict_and_prune

                check_claim(SweepDir(out_dir), settings)
                for cell in predict_and_prune(plan, SweepDir(out_dir), log):
                    out.print(f"skipped {cell.name}: {cell.reason}", highlight=False, markup=False)
            return
        plan, unfinished = run_sweep(
            settings,
            out_dir,
            shard=(index, count),
            keep_models=keep_models,
            executor=executor,
            predict=predict,
            log=log,
        )
    except CellsFailed as error:
        raise _cells_failed(error) from None
    except ValidationError as error:
        raise fail_validation(error, "cotforge sweep") from None
    except (SweepError, SourceError, TrainDataError, StudentError, ValueError) as error:
        raise fail(str(error)) from None
    except HubError as error:
        raise fail(str(error), service_code(error.usage)) from None
    if unfinished:
        out.print(
            f"{len(plan.cells) - len(unfinished)} of {len(plan.cells)} cells finished; when every shard is done, "
            f"run `cotforge sweep report {out_dir}`",
            highlight=False,
        )
        return
    _print_sweep(out_dir, push_to_hub, None)


def _cells_failed(error: CellsFailed) -> typer.Exit:
    """Each failed cell with its reason; exit 2 when every one was refused for its input, else 3 (incomplete)."""
    from cotforge.exitcodes import INCOMPLETE, USAGE_ERROR

    failures = error.failures
    for failure in failures:
        log(f"cell {failure.name} failed: {failure.reason}")
    code = USAGE_ERROR if all(failure.bad_input for failure in failures) else INCOMPLETE
    cells = "1 cell" if len(failures) == 1 else f"{len(failures)} cells"
    return fail(
        f"{cells} failed (above, each with its reason); the finished cells are kept: run the same command again to "
        "retry the failed ones",
        code,
    )


def sweep_report(
    out_dir: Annotated[Path, typer.Argument(help="A sweep folder (cotforge sweep --out)")],
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="Add the result as a section of this dataset repo's card (data untouched). Default: none"),
    ] = None,
    run_sd: RunSdOption = None,
) -> None:
    """Merge the finished cells of a sweep (every shard) into sweep_report.json, sweep_report.md and sweep.png."""
    _print_sweep(out_dir, push_to_hub, run_sd)


def _print_sweep(out_dir: Path, push_to_hub: str | None, run_sd: float | None) -> None:
    from cotforge.sweeps import SweepError, build_report
    from cotforge.sweeps.cells import read_finished_cells
    from cotforge.sweeps.layout import SweepDir

    sweep = SweepDir(out_dir)
    for why in read_finished_cells(sweep)[1].values():
        warn(f"not in the report: {why}")
    try:
        build_report(out_dir, run_sd)
    except SweepError as error:
        raise fail(str(error)) from None
    out.print(sweep.report_md.read_text(encoding="utf-8"), highlight=False, markup=False)
    out.print(f"wrote {sweep.report_json}, {sweep.report_md} and {sweep.plot_path}", highlight=False)
    if push_to_hub:
        from cotforge.hub import HubError
        from cotforge.sweeps import push_to_card

        try:
            commit = push_to_card(out_dir, push_to_hub)
        except HubError as error:
            raise fail(str(error), service_code(error.usage)) from None
        out.print(f"{push_to_hub}: card updated in commit {commit}", highlight=False)


def sweep_app(config_class: type[TrainConfig] = TrainConfig) -> typer.Typer:
    """`cotforge sweep` and `cotforge sweep report`; the trainer options come from `config_class`'s fields but those
    each cell decides (CELL_DECIDES), with the sweep's deliberate defaults (SWEEP_DEFAULTS)."""
    from cotforge.sweeps import CELL_DECIDES, SWEEP_DEFAULTS

    def run(ctx: typer.Context, **options: Any) -> None:
        sweep(ctx, config_class, **options)

    signature = inspect.signature(sweep, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    trainer = [name for name in config_class.model_fields if name not in CELL_DECIDES]
    parameters = [own[0], *own[2:], *config_options(config_class, trainer, SWEEP_DEFAULTS)]
    app = typer.Typer(
        help="Which granularity (or format, or teacher) suits this student? Train one student per arm on the same "
        "problems, evaluate on the same held-out questions, and compare with confidence intervals.\n\n"
        "Arms of a reasoning teacher (--arm, repeatable): g<level>, native, condensed-g<level>, answer-only, human, "
        "or a mixture A:w+B:w, e.g. --arm native --arm condensed-g3 --arm g3 --arm native:0.5+g3:0.5; with "
        "--reasoning keep the native trace is trained on and students are evaluated with --thinking-tokens."
    )
    app.callback(invoke_without_command=True)(with_parameters(run, parameters))
    app.command("report")(sweep_report)
    return app
