"""Command line: `cotforge` (all commands) and `build-cot` (the build command alone). Each command parses its
options, calls the library and prints; the commands live by group in build, corpus, train, score, sweep and
view."""

from __future__ import annotations

import typer

from cotforge.cli import build, corpus, judge, score, sweep, train, view
from cotforge.train.config import TrainConfig


def make_app(config_class: type[TrainConfig] = TrainConfig) -> typer.Typer:
    """Every command; `train` and `sweep` take their trainer options from `config_class`'s fields."""
    app = typer.Typer(help="Build, publish and train on chain-of-thought corpora.", no_args_is_help=True)
    app.command()(build.schema)
    app.command()(build.recipes)
    app.command("build")(build.build)
    app.command()(corpus.salvage)
    app.command()(corpus.push)
    app.command()(corpus.check)
    app.command()(corpus.pull)
    app.command("export")(corpus.export_command)
    app.command()(judge.judge)
    app.command("import-paper")(corpus.import_paper_command)
    app.command("train")(train.train_command(config_class))
    app.command("eval")(train.eval_command)
    app.command("score")(score.score_command)
    app.add_typer(sweep.sweep_app(config_class), name="sweep")
    app.command()(view.view)
    return app


app = make_app()
build_cot = typer.Typer(add_completion=False)
build_cot.command(help=build.build.__doc__)(build.build)  # `build-cot`: the build command alone

__all__ = ["app", "build_cot", "make_app"]
