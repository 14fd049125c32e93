"""The training group: `train` and `eval`. Every trainer option comes from TrainConfig (cli/options.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cotforge.cli.common import (
    CHECK_AGAINST_HELP,
    err,
    fail,
    fail_validation,
    log,
    out,
    service_code,
    warn,
)
from cotforge.cli.options import config_options, flags, given, with_parameters
from cotforge.recipes.sources import SourceError
from cotforge.train.config import PRESETS, TrainConfig, cli


def _warn_contamination(dataset: Path, subset: str | None, against: list[str] | None) -> None:
    """A warning when training questions are evaluation questions: from --check-against, or from the report
    `cotforge check` left in the build directory."""
    from cotforge.contamination import training_contamination
    from cotforge.corpus import BuildDirError

    if not dataset.is_dir():
        return
    try:
        found = training_contamination(dataset, subset, against)
    except BuildDirError as error:
        raise fail(str(error)) from None
    if found is None:
        err.print(f"not checked for contamination: run `cotforge check {dataset}` or pass --check-against")
    elif found.overlaps:
        warn(f"contamination: {found.summary}")


class TrainRun(BaseModel):
    """What `cotforge train` does around the run: a preset under the flags given, and the contamination check."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(
        default=None,
        description=f"{', '.join(PRESETS)}: the settings of arXiv 2502.18001 (flags given still win)",
        json_schema_extra=cli(default="none"),
    )
    check_against: list[str] | None = Field(
        default=None,
        description=CHECK_AGAINST_HELP.split(". Default")[0],
        json_schema_extra=cli(default="the report of `cotforge check`"),
    )

    @field_validator("preset")
    @classmethod
    def _known(cls, preset: str | None) -> str | None:
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose {', '.join(PRESETS)}")
        return preset


def train_command(config_class: type[TrainConfig] = TrainConfig) -> Callable[..., None]:
    """`cotforge train`, its options made from TrainRun and `config_class`'s settings (a subclass may extend a
    group)."""

    def train(**options: Any) -> None:
        """Fine-tune a student on a CoT corpus (loss on completions only); under torchrun it runs DDP."""
        from pydantic import ValidationError

        from cotforge.api import train_student as fit

        try:
            run = TrainRun(**given(TrainRun, options))
            config = config_class(**{**PRESETS.get(run.preset or "", {}), **given(config_class, options)})
        except ValidationError as error:
            raise fail_validation(error, "cotforge train", flags(TrainRun, config_class)) from None
        from cotforge.hub import HubError
        from cotforge.train.config import TrainConfigError
        from cotforge.train.data import TrainDataError
        from cotforge.train.memory import MemoryPlanError
        from cotforge.train.student import StudentError

        _warn_contamination(Path(config.data.dataset), config.data.subset, run.check_against or None)
        try:
            report = fit(config, log=log)  # with --push-to-hub, the token is checked before training
        except (TrainDataError, StudentError, MemoryPlanError, TrainConfigError) as error:
            raise fail(str(error)) from None
        except HubError as error:
            raise fail(str(error), service_code(error.usage)) from None
        out.print(
            f"trained {report.steps} steps in {report.wall_time_s:.1f} s; final loss {report.history[-1].loss:.4f};"
            f" saved to {config.output.output_dir}",
            highlight=False,
        )

    trainer = config_options(config_class)
    preset, check_against = config_options(TrainRun)
    first_step = next(i for i, p in enumerate(trainer) if p.name == "epochs")  # the preset's settings start there
    parameters = [*trainer[:first_step], preset, *trainer[first_step:], check_against]
    return with_parameters(train, parameters, declared_by=(TrainRun, config_class))


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
    gguf_file: Annotated[
        str | None, typer.Option(help="Load the student from this GGUF file inside --model. Default: none")
    ] = None,
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
    from cotforge.api import evaluate
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
            log=log,
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
