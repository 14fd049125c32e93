"""The corpus group: `push`, `pull`, `check`, `export`, `import-paper`, `salvage`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cotforge.cli.common import CHECK_AGAINST_HELP, err, fail, out, service_code, split_commas, warn, warn_cut_texts
from cotforge.exitcodes import CONTAMINATED
from cotforge.quality import DEDUP_HELP, MAX_PASS_RATE_HELP, MIN_JUDGE_HELP, MIN_PASS_RATE_HELP, SELECT_HELP
from cotforge.schemas.record import ReasoningView

if TYPE_CHECKING:
    from cotforge.quality.selection import Scorer, Selection


def salvage(build_dir: Annotated[Path, typer.Argument(help="A build directory whose store.sqlite is damaged")]) -> None:
    """Rebuild a damaged or lost store: every readable answer, and every record of the Parquet outputs, go into a
    fresh store.sqlite; the damaged file is kept beside it. Then run the build again to ask for what is missing."""
    from cotforge.builders.salvage import salvage as salvage_store
    from cotforge.corpus import BuildDir

    if not build_dir.is_dir():
        raise fail(f"{build_dir}: no such build directory")
    report = salvage_store(build_dir)
    if report.kept_aside is not None:
        out.print(f"the damaged store is kept as {report.kept_aside}", highlight=False)
    out.print(
        f"recovered {report.from_store:,} answers from the store and {report.from_outputs:,} more from the Parquet "
        f"outputs into {BuildDir(build_dir).store_path}",
        highlight=False,
    )
    for why, count in report.unreadable.items():
        err.print(f"[yellow]not recovered:[/] {count:,} x {escape(why)}", highlight=False)
    out.print("run the same build command again: it asks only for the answers still missing", highlight=False)


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
    from cotforge.contamination import check_build
    from cotforge.corpus import BuildDirError
    from cotforge.hub import HubError, check_repo_id
    from cotforge.hub import push as push_to_hub

    try:
        check_repo_id(repo_id)
        contamination = None
        if not no_check:
            report = check_build(build_dir, _against(check_against), split=check_split)
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
        raise fail(str(error), service_code(error.usage)) from None
    if not result.changed:
        out.print(f"{repo_id}: already up to date at {result.commit}; no new commit", highlight=False)
        return
    out.print(
        f"{repo_id}: committed {result.commit} ({len(result.files)} files, subsets {', '.join(result.subsets)})",
        highlight=False,
    )


def check(
    target: Annotated[str, typer.Argument(help="A build directory or a dataset repo on the Hub")],
    against: Annotated[list[str] | None, typer.Option(help=CHECK_AGAINST_HELP)] = None,
    split: Annotated[str, typer.Option(help="Split of built-in data sets to check against")] = "test",
    ngram: Annotated[int, typer.Option(min=1, help="Words per n-gram; a shared n-gram counts as an overlap")] = 8,
    similarity: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            max=1.0,
            help="A question at least this similar (0..1) to an evaluation question is a near-variant (the same "
            "story, numbers changed); 1 counts exact matches only. Default: contamination.NEAR_VARIANT, 0.8",
        ),
    ] = None,
    drop: Annotated[
        Path | None, typer.Option(help="Write a build directory without the overlapping questions here. Default: none")
    ] = None,
    fail_on_overlap: Annotated[
        bool, typer.Option("--fail-on-overlap", help=f"Exit with code {CONTAMINATED} when any question overlaps")
    ] = False,
) -> None:
    """Contamination check: training questions that also appear in evaluation sets (exact, n-gram or near-variant)."""
    from cotforge.contamination import NEAR_VARIANT, check_build, check_records
    from cotforge.corpus import BuildDir, BuildDirError
    from cotforge.schemas import CoTRecord

    path = Path(target)
    wanted = _against(against)
    near = None if similarity == 1 else similarity or NEAR_VARIANT
    report = None
    try:
        if path.is_dir() and drop is None:  # the check alone reads the questions, not the records
            report = check_build(path, wanted, split=split, ngram=ngram, near=near)
        elif path.is_dir():
            records = BuildDir(path).read_records()
            rejections = BuildDir(path).read_rejections()
        else:
            from cotforge.hub import HubError
            from cotforge.hub_pull import pull as pull_from_hub

            try:
                pulled = pull_from_hub(target)
            except HubError as error:
                raise fail(f"{target}: not a build directory, and {error}", service_code(error.usage)) from None
            records = [r for p in pulled.values() for r in p.records if isinstance(r, CoTRecord)]
            rejections = []
    except BuildDirError as error:
        raise fail(str(error)) from None
    if report is None:
        report = check_records(records, wanted, split=split, ngram=ngram, near=near)
    if not report.against:
        raise fail("nothing to check against: the corpus has no built-in data set; give --against")
    for name, why in report.not_checked.items():
        warn(f"{name} not checked: {why}")
    table = Table("problem", "data set", "training question", "evaluation set", "match", title="overlaps")
    for overlap in report.overlaps[:50]:
        match = f"near ({overlap.similarity:.2f})" if overlap.kind == "near" else overlap.kind
        cells = (overlap.problem_id, overlap.dataset, overlap.train_question[:80], overlap.eval_set, match)
        table.add_row(*map(Text, cells))  # questions and names as written: never read as markup
    if report.overlaps:
        out.print(table)
    out.print(report.summary(), highlight=False, markup=False)
    if path.is_dir():
        report.save(path)
    if drop is not None:
        from cotforge.contamination import write_without_overlaps

        kept = write_without_overlaps(
            report, records, rejections, drop, target, against=wanted, split=split, ngram=ngram
        )
        out.print(f"wrote {len(kept):,} records without the overlapping questions to {drop}", highlight=False)
    if fail_on_overlap and report.overlaps:
        raise typer.Exit(CONTAMINATED)
    if report.not_checked:  # the check asked for was not all done: a named file is bad input, a Hub set unreachable
        from cotforge.recipes.sources import BUILTIN_SOURCES

        named_files = [n for n in report.not_checked if n.split("/")[0] not in BUILTIN_SOURCES]
        raise fail(f"not checked against {', '.join(report.not_checked)}", service_code(bool(named_files)))


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
    from cotforge.corpus import HubLayout
    from cotforge.hub import HubError, check_repo_id
    from cotforge.hub_pull import check_pull_target, pull_corpus, save_pulled

    try:
        check_pull_target(out_dir, overwrite)  # before the download, which may be long
        check_repo_id(repo_id)
        pulled = pull_corpus(repo_id, subset, split=split, revision=revision)
        counts = save_pulled(pulled, out_dir, f"pull of {repo_id}", overwrite)
    except HubError as error:
        raise fail(str(error), service_code(error.usage)) from None
    for name, part in pulled.subsets.items():
        kind = "rejections" if name == HubLayout.rejected else "records"
        line = f"{name}: {len(part.records)} {kind}"
        if part.invalid:
            index, why = part.invalid[0]
            line += f", {len(part.invalid)} rows not valid (first: row {index}: {why})"
        out.print(line, highlight=False)
    for name, frame in pulled.tables.items():
        out.print(f"{name}: {frame.height} rows of the subsets pulled", highlight=False)
    rejections = sum(len(p.records) for name, p in pulled.subsets.items() if name == HubLayout.rejected)
    saved = f"saved {sum(counts.values())} records"
    out.print(saved + (f" and {rejections} rejections" if rejections else "") + f" to {out_dir}", highlight=False)
    warn_cut_texts(out_dir)


def export_command(
    build_dir: Annotated[Path, typer.Argument(help="A build directory")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="llama-factory, trl-messages or trl-prompt-completion")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder")],
    subset: Annotated[list[str] | None, typer.Option(help="Only these subsets; repeatable. Default: all")] = None,
    reasoning: Annotated[
        ReasoningView,
        typer.Option(help="A reasoning teacher's trace: keep it (where each tool reads one) or drop it"),
    ] = ReasoningView.keep,
    min_pass_rate: Annotated[float | None, typer.Option(help=f"{MIN_PASS_RATE_HELP}. Default: no bound")] = None,
    max_pass_rate: Annotated[float | None, typer.Option(help=f"{MAX_PASS_RATE_HELP}. Default: no bound")] = None,
    dedup: Annotated[bool, typer.Option("--dedup", help=DEDUP_HELP)] = False,
    min_judge: Annotated[list[str] | None, typer.Option(help=f"{MIN_JUDGE_HELP}. Default: no bound")] = None,
    select: Annotated[str | None, typer.Option(help=f"{SELECT_HELP}. Default: every record")] = None,
    student: Annotated[
        str | None,
        typer.Option(
            help="--select by score: the student whose scores rank the records (Hub id, folder or .gguf file), as "
            "`cotforge score` scored them with the trainer's template and max_length and this --reasoning. Default: "
            "none (a random --select needs none)"
        ),
    ] = None,
) -> None:
    """Write subsets for another trainer: LLaMA-Factory (alpaca JSON + dataset_info.json) or TRL (JSONL)."""
    from cotforge.corpus import BuildDirError
    from cotforge.interop import export
    from cotforge.quality.filters import QualityFilter, parse_min_judge
    from cotforge.quality.selection import parse_selection
    from cotforge.train.student import StudentError

    try:
        selection = parse_selection(select) if select is not None else None
        scorer = _scorer(selection, student, reasoning)
        judged = parse_min_judge(split_commas(min_judge))
        quality = QualityFilter(min_pass_rate, max_pass_rate, dedup, judged, selection, scorer)
        written = export(build_dir, out_dir, fmt, subset, reasoning, quality)
    except StudentError as error:  # the loader names the trainer's option
        raise fail(str(error).replace("--model ", "--student ", 1)) from None
    except (BuildDirError, ValueError) as error:
        raise fail(str(error)) from None
    out.print(f"wrote {len(written)} files to {out_dir}", highlight=False)


def _scorer(selection: Selection | None, student: str | None, reasoning: ReasoningView) -> Scorer | None:
    """Whose scores `--select` ranks by: the student's, rendered as the trainer renders it (None: no scores)."""
    if selection is None or not selection.needs_scores:
        if student is not None:
            raise ValueError("--student: give it with a --select that ranks by score (rsr, surprisal or rank)")
        return None
    if student is None:
        raise ValueError(f"--select {selection.text}: give --student, whose scores rank the records")
    from cotforge.train.config import Rendering
    from cotforge.train.scorer import student_scorer

    trainer = Rendering.model_fields
    return student_scorer(student, None, trainer["template"].default, reasoning, trainer["max_length"].default)


def import_paper_command(
    folder: Annotated[Path, typer.Argument(help="Folder of the paper's released JSON files (e.g. its SVAMP data)")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Build directory to write")],
) -> None:
    """Import the CoT files released with arXiv 2502.18001 as typed records, verified against the gold answers."""
    from cotforge.corpus import BuildDir
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
        out.print(f"{rejected} rows kept aside in {BuildDir(out_dir).rejections_path}, each with its reason")
    for f in summary.files:
        for question in f.no_gold[:3]:
            out.print(f"not in any gold file ({f.file}): {question}", highlight=False)


def _against(values: list[str] | None) -> list[str] | None:
    """--against / --check-against: None (the corpus's own data sets) when not given."""
    return split_commas(values) or None
