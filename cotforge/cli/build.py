"""The build group: `build` (also the `build-cot` command), `recipes`, `schema`."""

from __future__ import annotations

import json
from contextlib import closing
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import TypeAdapter
from rich.markup import escape
from rich.table import Table

from cotforge.cli.common import err, fail, out, service_code, warn, warn_cut_texts
from cotforge.cli.progress import BuildDisplay
from cotforge.exitcodes import INCOMPLETE, INTERRUPTED
from cotforge.recipes import RecipeError, builtin_recipes, resolve_recipe
from cotforge.recipes.sources import SourceError
from cotforge.schemas import SCHEMAS, BuildReport, CoTFormat, FormatMode
from cotforge.schemas.teachers import BACKEND_NAMES

if TYPE_CHECKING:
    from cotforge.api import BuildPlan


class BuildPromptMode(str, Enum):
    """The prompt modes a build can use ('unknown' exists only for imported data)."""

    blind = "blind"
    gold_hinted = "gold_hinted"


def schema(name: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCHEMAS)}")]) -> None:
    """Print the JSON schema of a cotforge type."""
    if name not in SCHEMAS:
        raise fail(f"unknown schema {name!r}; choose one of {', '.join(SCHEMAS)}")
    print(json.dumps(TypeAdapter(SCHEMAS[name]).json_schema(), indent=2))


def recipes() -> None:
    """List the built-in recipes (use one with `build-cot --recipe NAME`)."""
    table = Table("recipe", "description")
    for name, description in builtin_recipes().items():
        table.add_row(name, description)
    out.print(table)


def print_plan(plan: BuildPlan, pass_rate: float | None = None) -> None:
    from cotforge.builders.plan import reasoning_assumption
    from cotforge.builders.topup import estimate_line, stored_pass_rate

    recipe, sources, summary = plan.recipe, plan.sources, plan.summary()
    table = Table(title=f"plan: {recipe.name}", show_header=False)
    table.add_row("problems", " + ".join(f"{s.name} {s.count}" for s in sources) + f" = {summary.problems}")
    table.add_row("teachers", ", ".join(f"{t.label} ({t.backend})" for t in recipe.teachers))
    table.add_row(
        "levels x formats",
        f"{summary.combinations}: levels {recipe.granularities}, formats "
        f"{[f.value for f in recipe.formats]} ({recipe.format_mode.value}), prompts {recipe.prompt_mode.value}"
        + (f" with guides {recipe.guides.name}" if recipe.guides else "")
        + (", and the native arm" if recipe.native else "")
        + (f" condensed at levels {recipe.condensed}" if recipe.condensed else ""),
    )
    table.add_row("answers per prompt", str(summary.samples))
    if recipe.until_correct is not None:
        rate, source = (pass_rate, "--pass-rate") if pass_rate is not None else (None, "the answers stored")
        rate = rate if rate is not None else stored_pass_rate(plan.out_dir)
        estimate = estimate_line(recipe, summary.answers // summary.samples, rate, source)
        table.add_row("top-up attempts", estimate)
    table.add_row(
        "answers requested" + (" (at most)" if recipe.until_correct is not None else ""),
        f"{summary.problems} x {summary.teachers} x {summary.combinations} x {summary.samples} = {summary.answers:,}",
    )
    table.add_row("tokens (estimate)", f"{summary.prompt_tokens:,} prompt + {summary.completion_tokens:,} completion")
    if summary.reasoning_tokens:
        table.add_row("of which traces", f"{summary.reasoning_tokens:,} (assumed: {reasoning_assumption()})")
    if summary.cost_usd is None:
        cost = "unknown: no price for " + ", ".join(summary.unpriced_teachers)
    else:
        cost = f"${summary.cost_usd:,.2f}"
        if summary.unpriced_teachers:
            cost += f" (not counting {', '.join(summary.unpriced_teachers)}: no price)"
    table.add_row("cost (estimate)", cost)
    out.print(table)


RecipeOption = Annotated[
    str | None,
    typer.Option(
        "--recipe", "-r", help="Recipe YAML file or built-in name (`cotforge recipes`). Default: the flags alone"
    ),
]
DatasetOption = Annotated[
    list[str] | None,
    typer.Option("--dataset", "-d", help="Source data set, built-in name; repeatable. Default: the recipe's"),
]
TeacherOption = Annotated[
    list[str] | None,
    typer.Option(
        "--teacher",
        "-t",
        help="gpt-4o, a served model name (with --base-url) or BACKEND:MODEL, BACKEND one of "
        f"{', '.join(BACKEND_NAMES)} (openai-batch:gpt-4o); repeatable. Default: the recipe's",
    ),
]
GranularityOption = Annotated[
    list[int] | None,
    typer.Option("--granularity", "-g", help="Level 0-6 (0: answer only); repeatable. Default: the recipe's, or 5"),
]
FmtOption = Annotated[
    list[CoTFormat] | None, typer.Option("--format", "-f", help="CoT format; repeatable. Default: cot")
]
PromptModeOption = Annotated[
    BuildPromptMode | None,
    typer.Option(help="blind: the teacher solves; gold_hinted: it is shown the gold answer. Default: blind"),
]
FormatModeOption = Annotated[
    FormatMode | None,
    typer.Option(help="direct: each format from the question; rewrite: from the plain CoT. Default: direct"),
]
NumAnswersOption = Annotated[int | None, typer.Option("--num-answers", "-n", help="Answers per prompt. Default: 1")]
TemperatureOption = Annotated[float | None, typer.Option(help="Sampling temperature. Default: 0.7")]
MaxTokensOption = Annotated[int | None, typer.Option(help="Most tokens per answer. Default: 1024")]
LimitOption = Annotated[int | None, typer.Option(help="Only the first N problems of each source. Default: all")]
SplitOption = Annotated[
    str | None, typer.Option(help="Source split; not with --sample, whose rows are training rows. Default: train")
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(help="Any OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1. Default: the OpenAI API"),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(min=1, help="Requests in flight per teacher; use 1-4 for a local single-slot server. Default: 64"),
]
TimeoutOption = Annotated[
    float | None, typer.Option(min=0.1, help="Seconds to wait for one answer before retrying. Default: 120")
]
UntilCorrectOption = Annotated[
    int | None,
    typer.Option(min=1, help="Top-up: ask each prompt again until this many answers are correct. Default: off"),
]
MaxAttemptsOption = Annotated[
    int | None,
    typer.Option(min=1, help="With --until-correct: most attempts a prompt (each one answer). Default: the recipe's"),
]
PassRateOption = Annotated[
    float | None,
    typer.Option(
        min=0, max=1, help="With --until-correct and --dry-run: the pass rate to expect. Default: the stored answers'"
    ),
]
KeepOption = Annotated[str | None, typer.Option(help="'all' (each with a correct flag) or 'correct'. Default: all")]
SampleOption = Annotated[bool, typer.Option("--sample", help="Use the built-in sample rows: no download")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print the plan and cost estimate; send nothing")]
OutDirOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Build directory; the same one resumes, and holds one recipe. Default: builds/<recipe name>-<hash of "
        "what the recipe asks for>",
    ),
]
ExtendOption = Annotated[
    bool,
    typer.Option(
        "--extend",
        help="Add this recipe's sources, teachers, levels and formats to the build already in --out (same "
        "sampling and modes) instead of refusing a directory made by another recipe",
    ),
]


def build(
    recipe: RecipeOption = None,
    dataset: DatasetOption = None,
    teacher: TeacherOption = None,
    granularity: GranularityOption = None,
    fmt: FmtOption = None,
    prompt_mode: PromptModeOption = None,
    format_mode: FormatModeOption = None,
    num_answers: NumAnswersOption = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    limit: LimitOption = None,
    split: SplitOption = None,
    base_url: BaseUrlOption = None,
    concurrency: ConcurrencyOption = None,
    timeout: TimeoutOption = None,
    keep: KeepOption = None,
    until_correct: UntilCorrectOption = None,
    max_attempts: MaxAttemptsOption = None,
    pass_rate: PassRateOption = None,
    sample: SampleOption = False,
    dry_run: DryRunOption = False,
    out_dir: OutDirOption = None,
    extend: ExtendOption = False,
) -> None:
    """Build a CoT corpus: teachers answer source problems at the chosen granularities and formats."""
    sampling = {
        k: v for k, v in (("n", num_answers), ("temperature", temperature), ("max_tokens", max_tokens)) if v is not None
    }
    overrides: dict[str, Any] = {
        "sources": [{"dataset": d} | ({"split": split} if split else {}) for d in dataset] if dataset else None,
        "teachers": list(teacher) if teacher else None,
        "granularities": list(granularity) if granularity else None,
        "formats": [f.value for f in fmt] if fmt else None,
        "prompt_mode": prompt_mode.value if prompt_mode else None,
        "format_mode": format_mode.value if format_mode else None,
        "sampling": sampling or None,
        "limit": limit,
        "keep": keep,
        "until_correct": until_correct,
        "max_attempts": max_attempts,
        "teacher_options": {
            k: v for k, v in (("base_url", base_url), ("max_concurrency", concurrency), ("timeout_s", timeout)) if v
        }
        or None,
    }
    if sample and split not in (None, "train"):
        raise fail(f"--split {split} cannot be used with --sample: the built-in samples are training rows")
    from cotforge.api import plan_build
    from cotforge.corpus import BuildDirError

    try:
        plan = plan_build(resolve_recipe(recipe, overrides), out_dir, sample=sample, extend=extend, warn=warn)
    except (RecipeError, SourceError, BuildDirError) as error:
        raise fail(str(error)) from None
    print_plan(plan, pass_rate)
    if dry_run:
        return
    _run(plan)


def _run(plan: BuildPlan) -> None:
    """Run the planned build and print its report; exit 3 when answers (or judge requests) are left to ask again."""
    from cotforge.builders.build import BuildFailed, BuildInterrupted
    from cotforge.builders.store import StoreError
    from cotforge.builders.teachers import MissingApiKey
    from cotforge.builders.teachers.base import TeacherError
    from cotforge.corpus import BuildDirError

    target = plan.out_dir
    try:
        with closing(BuildDisplay(err)) as display:
            corpus = plan.run(progress=display)
            report = corpus.report
    except (MissingApiKey, RecipeError, BuildDirError, StoreError) as error:
        raise fail(str(error)) from None
    except TeacherError as error:  # the recipe's judge could not start; the build itself is written
        raise fail(f"judge: {error}", service_code(error.usage)) from None
    except BuildFailed as failure:
        print_report(failure.report, target)
        raise fail(f"{failure}; every answer stored so far is kept", service_code(failure.usage)) from None
    except BuildInterrupted as stop:
        print_report(stop.report, target)
        message = f"interrupted; everything answered is stored. Run the same command to resume ({target})"
        raise fail(message, INTERRUPTED) from None
    assert report is not None, "a build that ran has its report"
    print_report(report, target)
    warn_cut_texts(target)
    judged, judge = corpus.judged, plan.recipe.judge
    if judged is not None and judge is not None:
        from cotforge.cli.judge import print_judge_report

        print_judge_report(judged, judge.teacher.model)
    if report.failed or report.pending:
        message = f"incomplete: {report.failed} failed, {report.pending} pending. Run the same command to retry them"
        raise fail(message, INCOMPLETE)
    if judged is not None and not judged.complete:
        raise fail(
            f"incomplete: {judged.failed} judge requests failed. Run the same command to ask them again", INCOMPLETE
        )


def print_report(report: BuildReport, target: Path) -> None:
    rejected = ", ".join(f"{reason.value} {count}" for reason, count in report.rejected.items()) or "none"
    cost = "unknown" if report.cost_usd is None else f"${report.cost_usd:.4f}"
    out.print(
        f"[green]{escape(str(target))}[/]: {report.accepted} accepted, rejected: {rejected}, {report.failed} failed, "
        f"{report.pending} pending of {report.requested} | {report.prompt_tokens:,} + {report.completion_tokens:,} "
        f"tokens | {cost} | {report.wall_time_s:.1f} s, {report.requests_per_s:.1f} requests/s",
        highlight=False,
    )
    if report.runs > 1 and report.last_run is not None:
        last = report.last_run
        out.print(
            f"  over {report.runs} runs; this one: {last.stored} answers stored, {last.requests_sent} requests, "
            f"{last.wall_time_s:.1f} s",
            highlight=False,
        )
    if report.coverage is not None:
        reach = report.coverage
        attempts = ", ".join(f"{count} after {tries}" for tries, count in reach.attempts.items())
        out.print(
            f"  top-up: {reach.covered} of {reach.prompts} prompts reached {reach.until_correct} correct, "
            f"{reach.some_correct} at least one, {reach.none_correct} none; attempts: {attempts}",
            highlight=False,
        )
    if report.stopped:
        out.print(f"[yellow]stopped early:[/] {escape(report.stopped)}", highlight=False)
    for reason, count in report.failures.items():
        out.print(f"  [red]failed[/] {count}x: {escape(reason)}", highlight=False)
    for name, count in report.subsets.items():
        out.print(f"  subsets/{name}.parquet: {count} records", highlight=False)
