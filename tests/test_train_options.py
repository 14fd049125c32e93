"""Trainer settings are declared once, in TrainConfig: `train` and `sweep` offer each one, with its help and default."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import Field
from typer.testing import CliRunner

from cotforge.cli import make_app
from cotforge.sweeps import CELL_DECIDES, SWEEP_DEFAULTS
from cotforge.train.config import TrainConfig, cli

WIDE = {"COLUMNS": "300"}


class WithWarmupSteps(TrainConfig):
    warmup_steps: int | None = Field(
        default=None, gt=0, description="Warm up over this many steps", json_schema_extra=cli(default="by ratio")
    )


def test_a_field_added_to_train_config_is_offered_by_train_and_sweep_with_its_help() -> None:
    app = make_app(WithWarmupSteps)
    for command in ("train", "sweep"):
        shown = CliRunner().invoke(app, [command, "--help"], env=WIDE).output
        assert "--warmup-steps" in shown and "Warm up over this many steps. Default: by ratio" in shown, command
    plain = CliRunner().invoke(make_app(), ["train", "--help"], env=WIDE).output
    assert "--warmup-steps" not in plain


def test_the_added_field_reaches_the_config_of_both(
    paper_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict = {}

    def fit(config: TrainConfig, log) -> SimpleNamespace:
        seen["train"] = config
        return SimpleNamespace(steps=1, wall_time_s=0.0, history=[SimpleNamespace(loss=1.0)])

    def run_sweep(settings, out_dir, **options) -> tuple:
        seen["sweep"] = settings
        return SimpleNamespace(cells=[1, 2]), [1, 2]

    monkeypatch.setattr("cotforge.api.train_student", fit)
    monkeypatch.setattr("cotforge.sweeps.run_sweep", run_sweep)
    app = make_app(WithWarmupSteps)
    trained = CliRunner().invoke(app, ["train", "--dataset", "x.parquet", "--model", "m", "--warmup-steps", "5"])
    assert trained.exit_code == 0, trained.output
    assert isinstance(seen["train"], WithWarmupSteps) and seen["train"].warmup_steps == 5
    swept = CliRunner().invoke(
        app,
        ["sweep", "--dataset", str(paper_build), "--student", "s", "--out", str(tmp_path), "--warmup-steps", "7"],
    )
    assert swept.exit_code == 0, swept.output
    settings = seen["sweep"]
    assert settings.train.warmup_steps == 7 and settings.train.learning_rate == SWEEP_DEFAULTS["learning_rate"]


def test_defaults_agree_and_the_sweep_states_its_own_once() -> None:
    train_help = CliRunner().invoke(make_app(), ["train", "--help"], env=WIDE).output
    sweep_help = CliRunner().invoke(make_app(), ["sweep", "--help"], env=WIDE).output
    assert "Peak learning rate (cosine, after --warmup-ratio). Default: 5e-05" in train_help
    assert "Peak learning rate (cosine, after --warmup-ratio). Default: 0.0001" in sweep_help
    assert TrainConfig.model_fields["learning_rate"].default == 5e-5
    offered = [name for name in TrainConfig.model_fields if name not in CELL_DECIDES]
    assert "seed" not in offered and "lora_rank" in offered and "template" in offered
    assert set(SWEEP_DEFAULTS) <= set(offered)
