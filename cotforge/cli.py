"""Command line: `cotforge` (all commands) and `build-cot` (the build command alone)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cotforge.recipes import RecipeError, apply_overrides, builtin_recipes, load_recipe
from cotforge.recipes.loader import parse_recipe
from cotforge.recipes.sources import LoadedSource, SourceError, load_problems
from cotforge.schemas import SCHEMAS, BuildReport, CoTFormat, FormatMode, Recipe
from cotforge.schemas.record import ReasoningView

app = typer.Typer(help="Build, publish and train on chain-of-thought corpora.", no_args_is_help=True)
out = Console(soft_wrap=True)  # long paths and ids stay on one line in logs
err = Console(stderr=True, soft_wrap=True)

# Exit codes (README.md lists them): 0 all done; 1 an outside service failed (Hub, network); 2 bad usage or input;
# 3 a build that ended with answers failed or pending (run it again to finish); 4 contamination found
# (`check --fail-on-overlap`); 130 interrupted (Ctrl-C or SIGTERM; the work done is kept).
USAGE_ERROR = 2
INCOMPLETE = 3


class BuildPromptMode(str, Enum):
    """The prompt modes a build can use ('unknown' exists only for imported data)."""

    blind = "blind"
    gold_hinted = "gold_hinted"


INTERRUPTED = 130
explained_interrupt = False  # cotforge.entry says "interrupted" itself unless a command already explained


def fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    global explained_interrupt
    explained_interrupt = code == INTERRUPTED
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def schema(name: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCHEMAS)}")]) -> None:
    """Print the JSON schema of a cotforge type."""
    if name not in SCHEMAS:
        raise fail(f"unknown schema {name!r}; choose one of {', '.join(SCHEMAS)}")
    print(json.dumps(SCHEMAS[name].model_json_schema(), indent=2))


@app.command()
def recipes() -> None:
    """List the built-in recipes (use one with `build-cot --recipe NAME`)."""
    table = Table("recipe", "description")
    for name, description in builtin_recipes().items():
        table.add_row(name, description)
    out.print(table)


def resolve_recipe(recipe: str | None, overrides: dict[str, Any]) -> Recipe:
    """The recipe file or built-in recipe with command-line flags on top; flags alone when no recipe is given."""
    if recipe is not None:
        return apply_overrides(load_recipe(recipe), overrides)
    missing = [flag for flag, key in (("--dataset", "sources"), ("--teacher", "teachers")) if not overrides.get(key)]
    if missing:
        raise RecipeError(f"give --recipe, or at least {' and '.join(missing)}")
    fields = {k: v for k, v in overrides.items() if v is not None and k != "teacher_options"}
    return apply_overrides(parse_recipe(fields, "command line"), {"teacher_options": overrides["teacher_options"]})


def load_sources(recipe: Recipe, sample: bool) -> list[LoadedSource]:
    loaded = []
    for spec in recipe.sources:
        source = load_problems(spec, sample=sample, limit=recipe.limit)
        if source.invalid:
            index, why = source.invalid[0]
            err.print(
                f"[yellow]warning:[/] {source.name}: {len(source.invalid)} row(s) are not valid problems and "
                f"are left out; first, row {index}: {escape(why)}",
                highlight=False,
            )
        if source.merged:
            err.print(
                f"[yellow]warning:[/] {source.name}: {source.merged} repeated row(s) (same question and gold answer)"
                " merged into the first",
                highlight=False,
            )
        loaded.append(source)
    return loaded


def print_plan(recipe: Recipe, sources: list[LoadedSource]) -> None:
    from cotforge.builders.plan import reasoning_assumption, summarise

    summary = summarise(recipe, sources)
    table = Table(title=f"plan: {recipe.name}", show_header=False)
    table.add_row("problems", " + ".join(f"{s.name} {len(s.problems)}" for s in sources) + f" = {summary.problems}")
    table.add_row("teachers", ", ".join(f"{t.label} ({t.backend.value})" for t in recipe.teachers))
    table.add_row(
        "levels x formats",
        f"{summary.combinations}: levels {recipe.granularities}, formats "
        f"{[f.value for f in recipe.formats]} ({recipe.format_mode.value}), prompts {recipe.prompt_mode.value}"
        + (", and the native arm" if recipe.native else ""),
    )
    table.add_row("answers per prompt", str(summary.samples))
    table.add_row(
        "answers requested",
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


def build(
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe", "-r", help="Recipe YAML file or built-in name (`cotforge recipes`). Default: the flags alone"
        ),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", "-d", help="Source data set, built-in name; repeatable. Default: the recipe's"),
    ] = None,
    teacher: Annotated[
        list[str] | None,
        typer.Option(
            "--teacher",
            "-t",
            help="gpt-4o, openai-batch:gpt-4o, vllm:MODEL or a served model name; repeatable. Default: the recipe's",
        ),
    ] = None,
    granularity: Annotated[
        list[int] | None,
        typer.Option("--granularity", "-g", help="Level 0-6 (0: answer only); repeatable. Default: the recipe's, or 5"),
    ] = None,
    fmt: Annotated[
        list[CoTFormat] | None, typer.Option("--format", "-f", help="CoT format; repeatable. Default: cot")
    ] = None,
    prompt_mode: Annotated[
        BuildPromptMode | None,
        typer.Option(help="blind: the teacher solves; gold_hinted: it is shown the gold answer. Default: blind"),
    ] = None,
    format_mode: Annotated[
        FormatMode | None,
        typer.Option(help="direct: each format from the question; rewrite: from the plain CoT. Default: direct"),
    ] = None,
    num_answers: Annotated[
        int | None, typer.Option("--num-answers", "-n", help="Answers per prompt. Default: 1")
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature. Default: 0.7")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Most tokens per answer. Default: 1024")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N problems of each source. Default: all")] = None,
    split: Annotated[
        str | None, typer.Option(help="Source split; not with --sample, whose rows are training rows. Default: train")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="Any OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1. Default: the OpenAI API"),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Requests in flight per teacher; use 1-4 for a local single-slot server. Default: 64"),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds to wait for one answer before retrying. Default: 120")
    ] = None,
    keep: Annotated[
        str | None, typer.Option(help="'all' (each with a correct flag) or 'correct'. Default: all")
    ] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Use the built-in sample rows: no download")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and cost estimate; send nothing")] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Build directory; the same one resumes, and holds one recipe. Default: builds/<recipe name>-<hash of "
            "what the recipe asks for>",
        ),
    ] = None,
    extend: Annotated[
        bool,
        typer.Option(
            "--extend",
            help="Add this recipe's sources, teachers, levels and formats to the build already in --out (same "
            "sampling and modes) instead of refusing a directory made by another recipe",
        ),
    ] = False,
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
        "teacher_options": {
            k: v for k, v in (("base_url", base_url), ("max_concurrency", concurrency), ("timeout_s", timeout)) if v
        }
        or None,
    }
    if sample and split not in (None, "train"):
        raise fail(f"--split {split} cannot be used with --sample: the built-in samples are training rows")
    from cotforge.builders.build import BuildFailed, BuildInterrupted, check_build_dir, run_build
    from cotforge.builders.builddir import BuildDirError
    from cotforge.builders.store import StoreError
    from cotforge.builders.teachers import MissingApiKey
    from cotforge.recipes.identity import recipe_digest

    try:
        resolved = resolve_recipe(recipe, overrides)
        target = out_dir or Path("builds") / f"{resolved.name}-{recipe_digest(resolved)}"
        resolved = check_build_dir(target, resolved, extend)
        sources = load_sources(resolved, sample)
    except (RecipeError, SourceError, BuildDirError) as error:
        raise fail(str(error)) from None
    print_plan(resolved, sources)
    if dry_run:
        return
    try:
        report = run_build(resolved, sources, target, console=err, extend=extend)
    except (MissingApiKey, BuildDirError, StoreError) as error:
        raise fail(str(error)) from None
    except BuildFailed as failure:
        print_report(failure.report, target)
        raise fail(f"{failure}; every answer stored so far is kept", USAGE_ERROR if failure.usage else 1) from None
    except BuildInterrupted as stop:
        print_report(stop.report, target)
        message = f"interrupted; everything answered is stored. Run the same command to resume ({target})"
        raise fail(message, INTERRUPTED) from None
    print_report(report, target)
    if report.failed or report.pending:
        message = f"incomplete: {report.failed} failed, {report.pending} pending. Run the same command to retry them"
        raise fail(message, INCOMPLETE)


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
    if report.stopped:
        out.print(f"[yellow]stopped early:[/] {escape(report.stopped)}", highlight=False)
    for reason, count in report.failures.items():
        out.print(f"  [red]failed[/] {count}x: {escape(reason)}", highlight=False)
    for name, count in report.subsets.items():
        out.print(f"  subsets/{name}.parquet: {count} records", highlight=False)


app.command("build")(build)


@app.command()
def salvage(build_dir: Annotated[Path, typer.Argument(help="A build directory whose store.sqlite is damaged")]) -> None:
    """Rebuild a damaged or lost store: every readable answer, and every record of the Parquet outputs, go into a
    fresh store.sqlite; the damaged file is kept beside it. Then run the build again to ask for what is missing."""
    from cotforge.builders.salvage import salvage as salvage_store

    if not build_dir.is_dir():
        raise fail(f"{build_dir}: no such build directory")
    report = salvage_store(build_dir)
    if report.kept_aside is not None:
        out.print(f"the damaged store is kept as {report.kept_aside}", highlight=False)
    out.print(
        f"recovered {report.from_store:,} answers from the store and {report.from_outputs:,} more from the Parquet "
        f"outputs into {build_dir / 'store.sqlite'}",
        highlight=False,
    )
    for why, count in report.unreadable.items():
        err.print(f"[yellow]not recovered:[/] {count:,} x {why}", highlight=False)
    out.print("run the same build command again: it asks only for the answers still missing", highlight=False)


CHECK_AGAINST_HELP = (
    "Evaluation sets to compare training questions with: built-in data set names (their --check-split) or files"
    " (.jsonl/.json/.parquet/.csv with a question column); repeatable or comma-separated. Default: the built-in data"
    " sets the corpus comes from"
)


def _against(values: list[str] | None) -> list[str] | None:
    return [v.strip() for value in values for v in value.split(",") if v.strip()] if values else None


@app.command()
def push(
    build_dir: Annotated[Path, typer.Argument(help="A build directory (build-cot --out)")],
    repo_id: Annotated[str, typer.Argument(help="Dataset repo on the Hub, e.g. my-org/cot-gsm8k")],
    private: Annotated[bool, typer.Option(help="Create the repo private")] = False,
    rejected: Annotated[bool, typer.Option("--rejected", help="Also publish the rejected answers")] = False,
    license_id: Annotated[
        str | None,
        typer.Option("--license", help="Licence id for the card; default: the source data sets' shared licence"),
    ] = None,
    message: Annotated[str | None, typer.Option(help="Commit message; default: the subsets pushed")] = None,
    check_against: Annotated[list[str] | None, typer.Option(help=CHECK_AGAINST_HELP)] = None,
    check_split: Annotated[str, typer.Option(help="Split of built-in data sets to check against")] = "test",
    no_check: Annotated[bool, typer.Option("--no-check", help="Skip the contamination check")] = False,
    allow_incomplete: Annotated[
        bool,
        typer.Option(
            "--allow-incomplete",
            help="Publish a build with answers failed or pending (refused otherwise); the card then says so",
        ),
    ] = False,
) -> None:
    """Publish a build directory to the Hub in one atomic commit (data, card, plot, recipe, report); the card states
    the result of a contamination check against the evaluation sets."""
    from cotforge.builders.builddir import BuildDirError, read_subsets
    from cotforge.contamination import check_records
    from cotforge.hub import HubError, check_repo_id
    from cotforge.hub import push as push_to_hub

    try:
        check_repo_id(repo_id)
        contamination = None
        if not no_check:
            records = [r for rows in read_subsets(build_dir).values() for r in rows]
            report = check_records(records, _against(check_against), split=check_split)
            contamination = report.summary()
            (err if report.overlaps else out).print(f"contamination check: {contamination}", highlight=False)
        result = push_to_hub(
            build_dir,
            repo_id,
            private=private,
            include_rejected=rejected,
            license_id=license_id,
            message=message,
            contamination=contamination,
            allow_incomplete=allow_incomplete,
        )
    except BuildDirError as error:
        raise fail(str(error)) from None
    except HubError as error:
        raise fail(str(error), USAGE_ERROR if error.usage else 1) from None
    if not result.changed:
        out.print(f"{repo_id}: already up to date at {result.commit}; no new commit", highlight=False)
        return
    out.print(
        f"{repo_id}: committed {result.commit} ({len(result.files)} files, subsets {', '.join(result.subsets)})",
        highlight=False,
    )


CONTAMINATED = 4


@app.command()
def check(
    target: Annotated[str, typer.Argument(help="A build directory or a dataset repo on the Hub")],
    against: Annotated[list[str] | None, typer.Option(help=CHECK_AGAINST_HELP)] = None,
    split: Annotated[str, typer.Option(help="Split of built-in data sets to check against")] = "test",
    ngram: Annotated[int, typer.Option(min=1, help="Words per n-gram; a shared n-gram counts as an overlap")] = 8,
    drop: Annotated[
        Path | None, typer.Option(help="Write a build directory without the overlapping questions here. Default: none")
    ] = None,
    fail_on_overlap: Annotated[
        bool, typer.Option("--fail-on-overlap", help=f"Exit with code {CONTAMINATED} when any question overlaps")
    ] = False,
) -> None:
    """Contamination check: training questions that also appear in evaluation sets (exact or n-gram match)."""
    from cotforge.builders.builddir import BuildDirError, read_rejections, read_subsets
    from cotforge.contamination import check_records
    from cotforge.schemas import CoTRecord

    path = Path(target)
    try:
        if path.is_dir():
            records = [r for rows in read_subsets(path).values() for r in rows]
            rejections = read_rejections(path)
        else:
            from cotforge.hub import HubError
            from cotforge.hub import pull as pull_from_hub

            try:
                pulled = pull_from_hub(target)
            except HubError as error:
                raise fail(f"{target}: not a build directory, and {error}", USAGE_ERROR if error.usage else 1) from None
            records = [r for p in pulled.values() for r in p.records if isinstance(r, CoTRecord)]
            rejections = []
    except BuildDirError as error:
        raise fail(str(error)) from None
    wanted = _against(against)
    report = check_records(records, wanted, split=split, ngram=ngram)
    if not report.against:
        raise fail("nothing to check against: the corpus has no built-in data set; give --against")
    for name, why in report.not_checked.items():
        err.print(f"[yellow]warning:[/] {name} not checked: {escape(why)}", highlight=False)
    table = Table("problem", "data set", "training question", "evaluation set", "match", title="overlaps")
    for overlap in report.overlaps[:50]:
        table.add_row(overlap.problem_id, overlap.dataset, overlap.train_question[:80], overlap.eval_set, overlap.kind)
    if report.overlaps:
        out.print(table)
    out.print(report.summary(), highlight=False)
    if path.is_dir():
        report.save(path)
    if drop is not None:
        from cotforge.builders.builddir import report_of, write_outputs, write_report

        bad = report.contaminated_ids
        kept = [r for r in records if r.problem_id not in bad]
        kept_rejections = [r for r in rejections if r.problem_id not in bad]
        counts = write_outputs(drop, kept, kept_rejections)
        recipe = f"{target} without {len(bad)} contaminated questions"
        write_report(drop, report_of(recipe, kept, kept_rejections, counts))
        check_records(kept, wanted, split=split, ngram=ngram).save(drop)
        out.print(f"wrote {len(kept):,} records without the overlapping questions to {drop}", highlight=False)
    if fail_on_overlap and report.overlaps:
        raise typer.Exit(CONTAMINATED)
    if report.not_checked:  # the check asked for was not all done: a named file is bad input, a Hub set unreachable
        from cotforge.recipes.sources import BUILTIN_SOURCES

        named_files = [n for n in report.not_checked if n.split("/")[0] not in BUILTIN_SOURCES]
        raise fail(f"not checked against {', '.join(report.not_checked)}", USAGE_ERROR if named_files else 1)


@app.command()
def pull(
    repo_id: Annotated[str, typer.Argument(help="Dataset repo on the Hub")],
    subset: Annotated[str | None, typer.Option(help="One subset (default: all)")] = None,
    split: Annotated[str, typer.Option(help="Split to load")] = "train",
    revision: Annotated[str | None, typer.Option(help="Branch, tag or commit. Default: main")] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Where to write the build directory")] = Path("pulled"),
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the content of a non-empty --out (refused otherwise)")
    ] = False,
) -> None:
    """Download a published corpus, validate every row into a typed record, and save it as a build directory."""
    from cotforge.hub import REJECTED_SUBSET, HubError, check_pull_target, check_repo_id, save_pulled
    from cotforge.hub import pull as pull_from_hub

    try:
        check_pull_target(out_dir, overwrite)
        check_repo_id(repo_id)
        pulled = pull_from_hub(repo_id, subset, split=split, revision=revision)
        counts = save_pulled(pulled, out_dir, f"pull of {repo_id}", overwrite)
    except HubError as error:
        raise fail(str(error), USAGE_ERROR if error.usage else 1) from None
    for name, part in pulled.items():
        kind = "rejections" if name == REJECTED_SUBSET else "records"
        line = f"{name}: {len(part.records)} {kind}"
        if part.invalid:
            index, why = part.invalid[0]
            line += f", {len(part.invalid)} rows not valid (first: row {index}: {why})"
        out.print(line, highlight=False)
    rejections = sum(len(p.records) for name, p in pulled.items() if name == REJECTED_SUBSET)
    saved = f"saved {sum(counts.values())} records"
    out.print(saved + (f" and {rejections} rejections" if rejections else "") + f" to {out_dir}", highlight=False)


@app.command("export")
def export_command(
    build_dir: Annotated[Path, typer.Argument(help="A build directory")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="llama-factory, trl-messages or trl-prompt-completion")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder")],
    subset: Annotated[list[str] | None, typer.Option(help="Only these subsets; repeatable. Default: all")] = None,
    reasoning: Annotated[
        ReasoningView,
        typer.Option(help="A reasoning teacher's trace: keep it (where each tool reads one) or drop it"),
    ] = ReasoningView.keep,
) -> None:
    """Write subsets for another trainer: LLaMA-Factory (alpaca JSON + dataset_info.json) or TRL (JSONL)."""
    from cotforge.builders.builddir import BuildDirError
    from cotforge.interop import export

    try:
        written = export(build_dir, out_dir, fmt, subset, reasoning)
    except (BuildDirError, ValueError) as error:
        raise fail(str(error)) from None
    out.print(f"wrote {len(written)} files to {out_dir}", highlight=False)


@app.command("import-paper")
def import_paper_command(
    folder: Annotated[Path, typer.Argument(help="Folder of the paper's released JSON files (e.g. its SVAMP data)")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Build directory to write")],
) -> None:
    """Import the CoT files released with arXiv 2502.18001 as typed records, verified against the gold answers."""
    from cotforge.paper import import_paper

    try:
        summary = import_paper(folder, out_dir)
    except (FileNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    files = Table("file", "as", "rows", "imported", "kept aside (reason: rows)", "not in gold", title="files read")
    for f in summary.files:
        if f.skipped:
            files.add_row(f.file, f"[yellow]skipped: {f.skipped}[/]", "", "", "", "")
            continue
        aside = ", ".join(f"{reason}: {n}" for reason, n in sorted(f.rejected.items())) or "-"
        files.add_row(f.file, f.view, f"{f.rows:,}", f"{f.imported:,}", aside, f"{len(f.no_gold):,}")
    out.print(files)
    table = Table("subset", "records", "accuracy vs gold", title=f"imported into {out_dir}")
    for name, count in summary.report.subsets.items():
        table.add_row(name, f"{count:,}", f"{summary.accuracy[name]:.1%}")
    out.print(table)
    rejected = sum(summary.report.rejected.values())
    if rejected:
        out.print(f"{rejected} rows kept aside in {out_dir / 'rejections.parquet'}, each with its reason")
    for f in summary.files:
        for question in f.no_gold[:3]:
            out.print(f"not in any gold file ({f.file}): {question}", highlight=False)


def _warn_contamination(dataset: Path, subset: str | None, against: list[str] | None) -> None:
    """A warning when training questions are evaluation questions: from --check-against, or from the report
    `cotforge check` left in the build directory."""
    from cotforge.contamination import REPORT_FILE, check_records

    if not dataset.is_dir():
        return
    if against:
        from cotforge.builders.builddir import BuildDirError, read_subsets

        try:
            records = [r for rows in read_subsets(dataset, [subset] if subset else None).values() for r in rows]
        except BuildDirError as error:
            raise fail(str(error)) from None
        report = check_records(records, against)
        summary, overlaps = report.summary(), len(report.overlaps)
    elif (dataset / REPORT_FILE).exists():
        saved = json.loads((dataset / REPORT_FILE).read_text(encoding="utf-8"))
        summary, overlaps = saved["summary"], len(saved["overlaps"])
    else:
        err.print(f"not checked for contamination: run `cotforge check {dataset}` or pass --check-against")
        return
    if overlaps:
        err.print(f"[yellow]warning:[/] contamination: {escape(summary)}", highlight=False)


GgufFileOption = Annotated[
    str | None, typer.Option(help="Load the student from this GGUF file inside --model. Default: none")
]


@app.command("train")
def train_command(
    dataset: Annotated[str, typer.Option(help="The corpus: a build directory, a Parquet file or a Hub dataset id")],
    model: Annotated[str, typer.Option(help="Student: Hub id or local folder")],
    subset: Annotated[str | None, typer.Option(help="Subset (e.g. gpt-4o-g5-cot). Default: all of them")] = None,
    output_dir: Annotated[str, typer.Option("--out", "-o", help="Where the student is saved")] = "student",
    preset: Annotated[
        str | None,
        typer.Option(help="'paper': the settings of arXiv 2502.18001 (flags given still win). Default: none"),
    ] = None,
    gguf_file: GgufFileOption = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="auto (the tokenizer's chat template, else plain), chat, plain, alpaca, gemma, llama3. Default: auto"
        ),
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Tokens per example; longer ones are cut and counted. Default: 1024")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data. Default: 1")] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after N optimizer steps. Default: as many as --epochs take")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--lr", help="Peak learning rate (cosine, 3% warm-up). Default: 5e-5")
    ] = None,
    micro_batch_size: Annotated[int | None, typer.Option(help="Rows per forward pass, per process. Default: 8")] = None,
    global_batch_size: Annotated[
        int | None, typer.Option(help="Rows per optimizer step over all processes (accumulates). Default: 64")
    ] = None,
    batching: Annotated[
        str | None,
        typer.Option(
            help="packed: several examples per row, attention kept within each; grouped: one per row, padded in "
            "length-sorted batches; plain: one per row, padded, in data order. Default: packed"
        ),
    ] = None,
    gradient_checkpointing: Annotated[
        bool, typer.Option(help="Recompute activations in backward: less memory, ~30% slower")
    ] = False,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the model")] = False,
    shard: Annotated[
        str | None,
        typer.Option(help="Under torchrun: ddp copies the model to each rank; fsdp shards it (FSDP2). Default: ddp"),
    ] = None,
    cpu_offload: Annotated[
        bool, typer.Option(help="With --shard fsdp: parameters and optimizer state kept on the CPU")
    ] = False,
    memory_check: Annotated[
        bool, typer.Option(help="Refuse, before the first step, a run whose memory plan exceeds the device")
    ] = True,
    lora_rank: Annotated[
        int | None,
        typer.Option(help="Train LoRA adapters of this rank on a frozen base (peft). Default: full-parameter"),
    ] = None,
    lora_alpha: Annotated[float | None, typer.Option(help="LoRA scaling numerator. Default: 2 x --lora-rank")] = None,
    lora_dropout: Annotated[float | None, typer.Option(help="Dropout on the LoRA path. Default: 0")] = None,
    lora_targets: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated modules to adapt, e.g. q_proj,v_proj. Default: every linear layer of the blocks"
        ),
    ] = None,
    load_in_4bit: Annotated[
        bool, typer.Option(help="QLoRA: the frozen base in 4-bit NF4 (CUDA and bitsandbytes only)")
    ] = False,
    merge_lora: Annotated[
        bool, typer.Option(help="Also save the base with the adapter merged in, to OUT/merged")
    ] = False,
    save_every: Annotated[
        int | None, typer.Option(help="Checkpoint every N steps (for --resume). Default: only at the end")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in --out")] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for shuffling and initialisation. Default: 42")] = None,
    push_to_hub: Annotated[
        str | None, typer.Option(help="Also push the student to this model repo. Default: no push")
    ] = None,
    check_against: Annotated[
        list[str] | None,
        typer.Option(help=CHECK_AGAINST_HELP.split(". Default")[0] + ". Default: the report of `cotforge check`"),
    ] = None,
    reasoning: Annotated[
        ReasoningView | None,
        typer.Option(
            help="A reasoning teacher's trace: keep (trace then rationale, loss on both; through the chat template's "
            "reasoning_content where it renders one, else <think> tags) or drop (rationale only). Default: drop"
        ),
    ] = None,
    mix: Annotated[
        list[str] | None,
        typer.Option(
            help="SUBSET:WEIGHT; repeatable, in place of --subset: train on a mixture of subsets, each a share of the "
            "examples by weight (the largest such mixture, no example repeated). Default: none"
        ),
    ] = None,
) -> None:
    """Fine-tune a student on a CoT corpus (loss on completions only); under torchrun it runs DDP."""
    from pydantic import ValidationError

    from cotforge.train import PRESETS, TrainConfig
    from cotforge.train.loop import train

    if preset is not None and preset not in PRESETS:
        raise fail(f"unknown preset {preset!r}; choose {', '.join(PRESETS)}")
    flags = {
        "template": template,
        "max_length": max_length,
        "epochs": epochs,
        "max_steps": max_steps,
        "learning_rate": learning_rate,
        "micro_batch_size": micro_batch_size,
        "global_batch_size": global_batch_size,
        "batching": batching,
        "save_every": save_every,
        "seed": seed,
        "push_to_hub": push_to_hub,
        "gguf_file": gguf_file,
        "shard": shard,
        "lora_rank": lora_rank,
        "lora_alpha": lora_alpha,
        "lora_dropout": lora_dropout,
        "lora_targets": [name.strip() for name in lora_targets.split(",") if name.strip()] if lora_targets else None,
        "load_in_4bit": load_in_4bit or None,
        "merge_lora": merge_lora or None,
        "reasoning": reasoning,
        "mixture": parse_mixture(mix) if mix else None,
    }
    settings = {**(PRESETS[preset] if preset else {}), **{k: v for k, v in flags.items() if v is not None}}
    try:
        config = TrainConfig(
            model=model,
            dataset=dataset,
            subset=subset,
            output_dir=output_dir,
            resume=resume,
            gradient_checkpointing=gradient_checkpointing,
            compile=compile_model,
            memory_check=memory_check,
            cpu_offload=cpu_offload,
            **settings,
        )
    except ValidationError as error:
        from cotforge.recipes.loader import format_validation_error

        raise fail(format_validation_error(error, "cotforge train", "option")) from None
    from cotforge.hub import HubError
    from cotforge.train.config import TrainConfigError
    from cotforge.train.data import TrainDataError
    from cotforge.train.memory import MemoryPlanError
    from cotforge.train.student import StudentError

    _warn_contamination(Path(dataset), subset, _against(check_against))
    try:
        report = train(config, log=lambda line: err.print(line, highlight=False))
    except (TrainDataError, StudentError, MemoryPlanError, TrainConfigError) as error:
        raise fail(str(error)) from None
    except HubError as error:
        raise fail(str(error), USAGE_ERROR if error.usage else 1) from None
    out.print(
        f"trained {report.steps} steps in {report.wall_time_s:.1f} s; final loss {report.history[-1].loss:.4f};"
        f" saved to {output_dir}",
        highlight=False,
    )


def parse_mixture(items: list[str]) -> dict[str, float]:
    """`--mix a:0.5 --mix b:0.5` as {a: 0.5, b: 0.5}; a malformed item is a usage error naming it."""
    mixture: dict[str, float] = {}
    for item in items:
        name, _, weight = item.rpartition(":")
        try:
            value = float(weight)
        except ValueError:
            value = None
        if not name or value is None:
            raise fail(f"--mix {item} is not SUBSET:WEIGHT (e.g. --mix native:0.5)")
        if name in mixture:
            raise fail(f"--mix {item} repeats subset {name}")
        mixture[name] = value
    return mixture


@app.command("eval")
def eval_command(
    model: Annotated[str, typer.Option(help="Student folder (or Hub id)")],
    benchmark: Annotated[
        list[str], typer.Option(help="Built-in data set to evaluate on: svamp, gsm8k, aqua, ...; repeatable")
    ],
    split: Annotated[str, typer.Option(help="Split of each benchmark; not with --sample")] = "test",
    sample: Annotated[bool, typer.Option("--sample", help="The built-in sample rows: offline")] = False,
    limit: Annotated[int | None, typer.Option(help="First N problems of each benchmark. Default: all")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens generated per answer")] = 256,
    batch_size: Annotated[int, typer.Option(help="Questions generated together")] = 16,
    gguf_file: GgufFileOption = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Predictions and report go here. Default: printed only")
    ] = None,
    thinking_tokens: Annotated[
        int,
        typer.Option(
            min=0, help="A thinking student's budget for its <think> trace, on top of --max-new-tokens for the answer"
        ),
    ] = 0,
) -> None:
    """Accuracy of a student: greedy generation, then the builders' answer parser and verifier."""
    if sample and split != "test":
        raise fail(f"--split {split} cannot be used with --sample: the built-in samples are fixed rows")
    from cotforge.train.evaluate import evaluate
    from cotforge.train.student import StudentError

    try:
        report = evaluate(
            model,
            benchmark,
            split=split,
            sample=sample,
            limit=limit,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            gguf_file=gguf_file,
            out_dir=out_dir,
            log=lambda line: err.print(line, highlight=False),
            thinking_tokens=thinking_tokens,
        )
    except (SourceError, StudentError) as error:
        raise fail(str(error)) from None
    for name, accuracy in report.accuracy.items():
        out.print(f"{name}: accuracy {accuracy:.1%}", highlight=False)
    out.print(
        f"{report.correct}/{report.total} correct, {report.parsed} with a final answer line, "
        f"{report.wall_time_s:.1f} s",
        highlight=False,
    )
    if report.unclosed:
        out.print(f"{report.unclosed}/{report.total} never closed their <think> trace (counted wrong)", highlight=False)


sweep_app = typer.Typer(
    help="Which granularity (or format, or teacher) suits this student? Train one student per arm on the same "
    "problems, evaluate on the same held-out questions, and compare with confidence intervals."
)
app.add_typer(sweep_app, name="sweep")


def _sweep_corpus(dataset: str, out_dir: Path) -> str:
    """A build directory to sweep over: the one given, or the paper's files or a Hub repo turned into one."""
    from cotforge.builders.builddir import SUBSETS_DIR

    path = Path(dataset)
    if (path / SUBSETS_DIR).is_dir():
        return dataset
    corpus = out_dir / "corpus"
    if (corpus / SUBSETS_DIR).is_dir():
        return str(corpus)
    if path.is_dir():
        from cotforge.paper import import_paper

        import_paper(path, corpus)
        return str(corpus)
    from cotforge.hub import check_repo_id, save_pulled
    from cotforge.hub import pull as pull_from_hub

    check_repo_id(dataset)
    save_pulled(pull_from_hub(dataset), corpus)
    return str(corpus)


def _csv(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


@sweep_app.callback(invoke_without_command=True)
def sweep(
    ctx: typer.Context,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="The corpus: a build directory, a folder of the paper's released files, or a Hub repo. Required to "
            "run a sweep (no default)"
        ),
    ] = None,
    student: Annotated[
        list[str] | None,
        typer.Option(help="Student model (Hub id or folder); repeatable. Required to run a sweep (no default)"),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Sweep folder; the same one resumes. Required to run a sweep (no default)"),
    ] = None,
    vary: Annotated[str, typer.Option(help="The axis compared: granularity, format or teacher")] = "granularity",
    levels: Annotated[
        list[str] | None, typer.Option(help="Only these levels, e.g. 1,3,5 (vary granularity). Default: all")
    ] = None,
    teacher: Annotated[
        str | None, typer.Option(help="The teacher held fixed. Default: the one with the most levels")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="The format held fixed. Default: cot")] = None,
    level: Annotated[
        int | None, typer.Option(help="The level held fixed (vary format or teacher). Default: the most common, or 5")
    ] = None,
    no_baselines: Annotated[
        bool, typer.Option("--no-baselines", help="Leave out the answer-only and human baselines")
    ] = False,
    eval_benchmark: Annotated[
        str | None,
        typer.Option(
            "--eval",
            help="Evaluate on this built-in benchmark's --split instead of held-out problems. "
            "Default: hold out --holdout of the corpus's problems",
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Split of --eval")] = "test",
    holdout: Annotated[float, typer.Option(help="Share of the shared problems held out for evaluation")] = 0.3,
    eval_limit: Annotated[int | None, typer.Option(help="At most N held-out questions. Default: all")] = None,
    seeds: Annotated[str, typer.Option(help="Training seeds, comma-separated; each is a cell")] = "1",
    max_steps: Annotated[
        int | None, typer.Option(help="Steps per cell. Default: --epochs over the shared problems")
    ] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the shared problems (when no --max-steps)")] = 1.0,
    learning_rate: Annotated[float, typer.Option("--lr", help="Peak learning rate")] = 1e-4,
    micro_batch_size: Annotated[int, typer.Option(help="Rows per forward pass")] = 8,
    global_batch_size: Annotated[int, typer.Option(help="Rows per optimizer step")] = 16,
    max_length: Annotated[int, typer.Option(help="Tokens per training example")] = 512,
    lora_rank: Annotated[
        int | None, typer.Option(help="Train LoRA adapters of this rank in every cell. Default: full-parameter")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens generated per held-out answer")] = 256,
    gguf_file: Annotated[
        str | None, typer.Option(help="Load the students from this GGUF file inside --student. Default: none")
    ] = None,
    shard: Annotated[str, typer.Option(help="Run slice i of N of the cells (i/N), for job arrays")] = "0/1",
    keep_models: Annotated[bool, typer.Option("--keep-models", help="Keep each cell's trained model")] = False,
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="Add the result as a section of this dataset repo's card (data untouched). Default: none"),
    ] = None,
) -> None:
    """Run a sweep (or `cotforge sweep report DIR` to merge the shards of one)."""
    if ctx.invoked_subcommand is not None:
        return
    from pydantic import ValidationError

    from cotforge.hub import HubError
    from cotforge.train.data import TrainDataError
    from cotforge.train.student import StudentError
    from cotforge.train.sweep import SweepError, SweepSettings, run_sweep

    if not dataset or not student or out_dir is None:
        raise fail("give --dataset, at least one --student and --out (see cotforge sweep --help)")
    try:
        index, count = (int(part) for part in shard.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        raise fail(f"--shard {shard}: give i/N with 0 <= i < N, e.g. 0/4") from None
    try:
        corpus = _sweep_corpus(dataset, out_dir)
        settings = SweepSettings(
            corpus=corpus,
            students=list(student),
            gguf_file=gguf_file,
            vary=vary,
            teacher=teacher,
            format=fmt,
            level=level,
            levels=[int(v) for v in _csv(levels)] or None,
            baselines=not no_baselines,
            eval_benchmark=eval_benchmark,
            eval_split=split,
            holdout=None if eval_benchmark else holdout,
            eval_limit=eval_limit,
            seeds=[int(v) for v in _csv([seeds])],
            max_steps=max_steps,
            epochs=epochs,
            learning_rate=learning_rate,
            micro_batch_size=micro_batch_size,
            global_batch_size=global_batch_size,
            max_length=max_length,
            lora_rank=lora_rank,
            max_new_tokens=max_new_tokens,
        )
        plan, unfinished = run_sweep(
            settings,
            out_dir,
            shard=(index, count),
            keep_models=keep_models,
            log=lambda line: err.print(line, highlight=False),
        )
    except ValidationError as error:
        from cotforge.recipes.loader import format_validation_error

        raise fail(format_validation_error(error, "cotforge sweep", "option")) from None
    except (SweepError, SourceError, TrainDataError, StudentError, ValueError) as error:
        raise fail(str(error)) from None
    except HubError as error:
        raise fail(str(error), USAGE_ERROR if error.usage else 1) from None
    if unfinished:
        out.print(
            f"{len(plan.cells) - len(unfinished)} of {len(plan.cells)} cells finished; when every shard is done, "
            f"run `cotforge sweep report {out_dir}`",
            highlight=False,
        )
        return
    _print_sweep(out_dir, push_to_hub)


@sweep_app.command("report")
def sweep_report(
    out_dir: Annotated[Path, typer.Argument(help="A sweep folder (cotforge sweep --out)")],
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="Add the result as a section of this dataset repo's card (data untouched). Default: none"),
    ] = None,
) -> None:
    """Merge the finished cells of a sweep (every shard) into sweep_report.json, sweep_report.md and sweep.png."""
    _print_sweep(out_dir, push_to_hub)


def _print_sweep(out_dir: Path, push_to_hub: str | None) -> None:
    from cotforge.train.sweep import PLOT_FILE, REPORT_MD, SweepError, build_report

    try:
        build_report(out_dir)
    except SweepError as error:
        raise fail(str(error)) from None
    out.print((out_dir / REPORT_MD).read_text(encoding="utf-8"), highlight=False, markup=False)
    out.print(
        f"wrote {out_dir / 'sweep_report.json'}, {out_dir / REPORT_MD} and {out_dir / PLOT_FILE}", highlight=False
    )
    if push_to_hub:
        from cotforge.hub import HubError, push_card_section

        plot = out_dir / PLOT_FILE
        try:
            commit = push_card_section(
                push_to_hub,
                "sweep",
                "## Which granularity for which student\n\n" + _sweep_section(out_dir),
                {"sweep/accuracy.png": plot.read_bytes()} if plot.exists() else {},
            )
        except HubError as error:
            raise fail(str(error), USAGE_ERROR if error.usage else 1) from None
        out.print(f"{push_to_hub}: card updated in commit {commit}", highlight=False)


def _sweep_section(out_dir: Path) -> str:
    from cotforge.train.sweep import REPORT_MD

    body = (out_dir / REPORT_MD).read_text(encoding="utf-8").split("\n", 2)[2]  # without the file's own title
    return body + "\n![Held-out accuracy by granularity level](sweep/accuracy.png)\n"


build_cot = typer.Typer(add_completion=False)
build_cot.command(help=build.__doc__)(build)  # `build-cot`: the build command alone (cotforge.entry runs both)
