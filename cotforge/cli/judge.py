"""`cotforge judge`: an LLM judge's scores for a build's accepted records."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from cotforge.cli.common import fail, fail_validation, out, service_code, split_commas, warn
from cotforge.exitcodes import INCOMPLETE

if TYPE_CHECKING:
    from cotforge.judging import JudgeReport


def judge(
    build_dir: Annotated[Path, typer.Argument(help="A build directory (a build, an import or a pull)")],
    model: Annotated[
        str | None,
        typer.Option(help="The judge: gpt-4o-mini, openai-batch:gpt-4o, vllm:Qwen/... Default: the recipe's judge"),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="The judge's OpenAI-compatible server. Default: the recipe's, else the OpenAI API"),
    ] = None,
    rubric: Annotated[
        list[str] | None,
        typer.Option(help="faithful, level, leak; repeatable or comma-separated. Default: the recipe's, or faithful"),
    ] = None,
    structured_output: Annotated[
        str | None,
        typer.Option(
            help="json_schema (OpenAI, vLLM, llama-server), json_object (llama-cpp-python) or prompt. Default: the "
            "recipe's, else json_schema"
        ),
    ] = None,
    subset: Annotated[list[str] | None, typer.Option(help="Only these subsets; repeatable. Default: all")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Judge only the first N records of each subset. Default: all")
    ] = None,
) -> None:
    """Score each accepted record on rubrics with an LLM judge. Each verdict is paid once (judge.sqlite): run it
    again to resume. Scores go to judge_scores.parquet, malformed verdicts to judge_rejections.parquet."""
    from cotforge.builders.teachers import MissingApiKey
    from cotforge.builders.teachers.base import TeacherError
    from cotforge.corpus import BuildDirError
    from cotforge.judging import judge_build, judge_spec

    teacher_options: dict[str, Any] = {"base_url": base_url} if base_url else {}
    try:
        spec = judge_spec(
            build_dir,
            None,
            model,
            teacher_options,
            rubrics=split_commas(rubric) or None,
            structured_output=structured_output,
        )
        report = judge_build(build_dir, spec, None, subset, limit)
    except ValidationError as error:
        raise fail_validation(error, "judge") from None
    except (BuildDirError, ValueError, MissingApiKey) as error:
        raise fail(str(error)) from None
    except TeacherError as error:
        raise fail(str(error), service_code(error.usage)) from None
    print_judge_report(report, spec.teacher.model)
    if not report.complete:
        raise fail(f"{report.failed} judge requests failed; run the same command to ask them again", INCOMPLETE)


def print_judge_report(report: JudgeReport, model: str) -> None:
    table = Table("subset", "rubric", "mean", "judged", "rejected", title=f"judge: {model}")
    for name, rubrics in report.means.items():
        for rubric_name, summary in rubrics.items():
            mean = "-" if summary["mean"] is None else f"{summary['mean']:.2f}"
            table.add_row(name, rubric_name, mean, str(summary["judged"]), str(summary["rejected"]))
    out.print(table)
    cost = "" if report.cost_usd is None else f", ${report.cost_usd:.4f}"
    out.print(
        f"{report.asked} verdicts asked, {report.reused} already stored; {report.prompt_tokens:,} prompt and "
        f"{report.completion_tokens:,} completion tokens{cost} over every verdict shown",
        highlight=False,
    )
    for line in report.first_rejections:
        warn(f"verdict rejected: {line}")
