"""The sweep group: `sweep` (run one, or a shard of one) and `sweep report` (merge the shards). Every option is
generated (cli/options.py) from SweepSettings, the trainer's groups it shares included, or from SweepRun, how this
command runs it."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cotforge.cli.common import fail, fail_validation, log, out, service_code, warn
from cotforge.cli.options import config_options, flags, given, option, with_parameters
from cotforge.recipes.sources import SourceError
from cotforge.sweeps.settings import SweepSettings, sweep_settings_for
from cotforge.train.config import TrainConfig, cli

if TYPE_CHECKING:
    from cotforge.sweeps.cells import CellsFailed

REQUIRED = "Required to run a sweep (no default)"  # `sweep report` runs without the options a sweep needs


class SweepRun(BaseModel):
    """How `cotforge sweep` runs a sweep: from where, into which folder, on which machines; none of it decides the
    sweep's numbers (SweepSettings does)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        description="The corpus: a build directory, a folder of the paper's released files, or a Hub repo"
    )
    out_dir: Path = Field(description="Sweep folder; the same one resumes", json_schema_extra=cli("--out", "-o"))
    shard: str = Field(default="0/1", description="Run slice i of N of the cells (i/N), for job arrays")
    jobs: int = Field(
        default=1,
        ge=1,
        description="Cells at once on this machine, each in a process of its own: one GPU each where there are GPUs "
        "(at most one cell per GPU), else the CPU cores split between them. Not one of the sweep's settings: a resume "
        "may give another",
    )
    ray: str | None = Field(
        default=None,
        description="Run each cell as a Ray task, scheduled by Ray: local (start Ray here), auto (the cluster this "
        "machine is in) or a cluster's address (host:6379, ray://host:10001). A cell asks for one GPU, or --ray-cpus "
        "CPUs on a cluster without GPUs. On several machines, --out must be on a filesystem all of them share. Needs "
        "pip install 'cotforge[sweep-ray]'",
        json_schema_extra=cli(default="no Ray"),
    )
    ray_cpus: int = Field(default=1, ge=1, description="--ray: the CPUs (torch threads) a cell asks for without GPUs")
    keep_models: bool = Field(default=False, description="Keep each cell's trained model")
    push_to_hub: str | None = Field(
        default=None,
        description="Add the result as a section of this dataset repo's card (data untouched)",
        json_schema_extra=cli(default="none"),
    )
    dry_run: bool = Field(
        default=False, description="Print the arms, cells, hold-out and the difference the sweep could detect"
    )
    prior_accuracy: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="--dry-run: the accuracy you expect of the students, for the power statement",
    )
    predict: bool = Field(
        default=False,
        description="Before training, score every arm's training records under every student (Rank-Surprisal Ratio, "
        "as `cotforge score`) and print the predicted order; the report sets the scores beside the accuracies. Trains "
        "the same cells",
    )

    @field_validator("shard")
    @classmethod
    def _a_slice(cls, shard: str) -> str:
        index, _, count = shard.partition("/")
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            raise ValueError("give i/N with 0 <= i < N, e.g. 0/4")
        return shard

    def slice(self) -> tuple[int, int]:
        """This shard's (i, N)."""
        index, _, count = self.shard.partition("/")
        return int(index), int(count)


def sweep(ctx: typer.Context, settings_class: type[SweepSettings], **options: Any) -> None:
    """Run a sweep (or `cotforge sweep report DIR` to merge the shards of one)."""
    if ctx.invoked_subcommand is not None:
        return
    from pydantic import ValidationError

    from cotforge.fetch import fetch_corpus
    from cotforge.hub import HubError
    from cotforge.sweeps import SweepError, run_sweep
    from cotforge.sweeps.arms import parse_arm
    from cotforge.sweeps.cells import CellsFailed
    from cotforge.sweeps.executors import executor_for
    from cotforge.sweeps.layout import SweepDir
    from cotforge.train.data import TrainDataError
    from cotforge.train.student import StudentError

    if not options["dataset"] or not options["students"] or options["out_dir"] is None:
        raise fail("give --dataset, at least one --student and --out (see cotforge sweep --help)")
    try:
        run, chosen = SweepRun(**given(SweepRun, options)), given(settings_class, options)
        executor = executor_for(run.jobs, run.ray, run.ray_cpus)
        for text in chosen.get("arms", []):
            parse_arm(text)  # a malformed arm is refused before the corpus is fetched
        corpus = str(fetch_corpus(run.dataset, SweepDir(run.out_dir).corpus_dir))
        if chosen.get("eval_benchmark"):
            chosen["holdout"] = None  # nothing is held out: the benchmark's questions are the test
        settings = settings_class(corpus=corpus, **chosen)
        if run.dry_run:
            return _dry_run(settings, run)
        plan, unfinished = run_sweep(
            settings,
            run.out_dir,
            shard=run.slice(),
            keep_models=run.keep_models,
            executor=executor,
            predict=run.predict,
            log=log,
        )
    except CellsFailed as error:
        raise _cells_failed(error) from None
    except ValidationError as error:
        raise fail_validation(error, "cotforge sweep", flags(SweepRun, settings_class)) from None
    except (SweepError, SourceError, TrainDataError, StudentError, ValueError) as error:
        raise fail(str(error)) from None
    except HubError as error:
        raise fail(str(error), service_code(error.usage)) from None
    if unfinished:
        out.print(
            f"{len(plan.cells) - len(unfinished)} of {len(plan.cells)} cells finished; when every shard is done, "
            f"run `cotforge sweep report {run.out_dir}`",
            highlight=False,
        )
        return
    _print_sweep(run.out_dir, run.push_to_hub, None)


def _dry_run(settings: SweepSettings, run: SweepRun) -> None:
    """The plan and the power statement; with --predict or --prune, the arms scored (and those --prune skips)."""
    from cotforge.sweeps import plan_sweep
    from cotforge.sweeps.cells import check_claim, drawn_hold_out
    from cotforge.sweeps.layout import SweepDir
    from cotforge.sweeps.planning import describe_plan

    folder = SweepDir(run.out_dir)
    plan = plan_sweep(settings, drawn_hold_out(folder, settings))  # a resumed sweep's own
    out.print(describe_plan(plan, run.prior_accuracy), highlight=False, markup=False)
    if run.predict or settings.prune:  # the scores are written into the folder: never another sweep's
        from cotforge.sweeps.predict import predict_and_prune

        check_claim(folder, settings)
        for cell in predict_and_prune(plan, folder, log):
            out.print(f"skipped {cell.name}: {cell.reason}", highlight=False, markup=False)


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


def sweep_report(out_dir: Path, push_to_hub: str | None = None, run_sd: float | None = None) -> None:
    """Merge the finished cells of a sweep (every shard) into sweep_report.json, sweep_report.md and sweep.png."""
    _print_sweep(out_dir, push_to_hub, run_sd)


REPORT_OPTIONS = [
    inspect.Parameter(
        "out_dir",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[Path, typer.Argument(help="A sweep folder (cotforge sweep --out)")],
    ),
    option("push_to_hub", SweepRun.model_fields["push_to_hub"], None),
    option("run_sd", SweepSettings.model_fields["run_sd"], None),
]


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
    """`cotforge sweep` and `cotforge sweep report`: the options of SweepRun and of SweepSettings (its corpus is
    --dataset's, fetched), the trainer's groups the sweep shares taken as `config_class` declares them."""
    settings_class = sweep_settings_for(config_class)

    def run(ctx: typer.Context, **options: Any) -> None:
        sweep(ctx, settings_class, **options)

    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    parameters = [
        context,
        *config_options(SweepRun, required=REQUIRED),
        *config_options(settings_class, skip=["corpus"], required=REQUIRED),
    ]
    app = typer.Typer(
        help="Which granularity (or format, or teacher) suits this student? Train one student per arm on the same "
        "problems, evaluate on the same held-out questions, and compare with confidence intervals.\n\n"
        "Arms of a reasoning teacher (--arm, repeatable): g<level>, native, condensed-g<level>, answer-only, human, "
        "or a mixture A:w+B:w, e.g. --arm native --arm condensed-g3 --arm g3 --arm native:0.5+g3:0.5; with "
        "--reasoning keep the native trace is trained on and students are evaluated with --thinking-tokens."
    )
    app.callback(invoke_without_command=True)(with_parameters(run, parameters, (SweepRun, settings_class)))
    app.command("report")(with_parameters(sweep_report, REPORT_OPTIONS))
    return app
