"""`cotforge score`: how well a corpus suits a student before training it (cotforge.suitability). The rendering
options (template, reasoning, max_length, gguf_file) are the trainer's, from TrainConfig (cli/options.py)."""

from __future__ import annotations

import inspect
from contextlib import closing
from typing import Annotated, Any

import typer
from rich.table import Table

from cotforge.cli.common import err, fail, out, service_code, split_commas, warn
from cotforge.cli.options import config_options, given, with_parameters
from cotforge.cli.progress import ScoreDisplay
from cotforge.exitcodes import INTERRUPTED
from cotforge.train.config import TrainConfig

RENDERING = ("gguf_file", "template", "reasoning", "max_length")  # as the trainer shows records to the student


def _parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def score(*, target: str, student: str, subset: list[str] | None, batch_size: int, **rendering: Any) -> None:
    """Score how well each record suits a student, before any training: every completion token's surprisal and rank
    under the student give the record's Rank-Surprisal Ratio (arXiv 2601.14249; lower suits it better), kept per
    record in the build's suitability.parquet and per subset in its cotforge_stats.json. A re-run, or another
    student, scores only what is not there yet."""
    from cotforge.api import score as score_corpus
    from cotforge.corpus import BuildDirError
    from cotforge.hub import HubError
    from cotforge.train.student import StudentError

    try:
        with closing(ScoreDisplay(err)) as display:
            report = score_corpus(
                target,
                student,
                subsets=split_commas(subset) or None,
                batch_size=batch_size,
                progress=display,
                **given(TrainConfig, rendering),
            )
    except HubError as error:
        raise fail(f"{target}: not a build directory, and {error}", service_code(error.usage)) from None
    except StudentError as error:  # the loader names the trainer's option
        raise fail(str(error).replace("--model ", "--student ", 1)) from None
    except (BuildDirError, ValueError) as error:  # ValueError: a template, a repo id that is no name
        raise fail(str(error)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; every batch scored is kept. Run the same command to go on", INTERRUPTED) from None
    by = report.scored_by
    table = Table("subset", "records", "tokens", "RSR", "mean surprisal", "mean rank", title=f"under {by.student}")
    for name, found in report.subsets.items():
        numbers = [found.rsr, found.mean_surprisal, found.mean_rank]
        table.add_row(
            name, f"{found.records:,}", f"{found.tokens:,}", *(f"{n:.3f}" if n is not None else "-" for n in numbers)
        )
    out.print(table)
    speed = report.tokens / report.wall_time_s if report.wall_time_s else 0.0
    out.print(
        f"scored {report.scored:,} records ({report.reused:,} already scored) under {by.student} (weights "
        f"{by.weights_digest}, template {by.template}, reasoning {by.reasoning}, max_length {by.max_length}) in "
        f"{report.wall_time_s:.1f} s, {speed:,.0f} tokens/s; per record: {report.directory.scores_path}",
        highlight=False,
    )
    if report.truncated:
        warn(f"{report.truncated} completions were cut at max_length {by.max_length}, as the trainer cuts them")
    if report.not_scored:
        warn(f"{report.not_scored} records not scored: their prompt alone fills max_length (the trainer drops them)")


score_command = with_parameters(
    score,
    [
        _parameter("target", Annotated[str, typer.Argument(help="A build directory, or a dataset repo on the Hub")]),
        _parameter("student", Annotated[str, typer.Option(help="Student: Hub id, local folder, or a .gguf file")]),
        _parameter(
            "subset",
            Annotated[list[str] | None, typer.Option(help="Only these subsets; repeatable. Default: all")],
            None,
        ),
        _parameter(
            "batch_size", Annotated[int, typer.Option(min=1, help="Records per forward pass (no gradient)")], 16
        ),
        *config_options(TrainConfig, RENDERING),
    ],
)
