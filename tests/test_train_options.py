"""Trainer settings are declared once, in TrainConfig's groups: `train` and `sweep` offer each one, with its help and
default; every option of either command is a setting some model declares."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import typer.main
from pydantic import Field, ValidationError
from typer.testing import CliRunner

from cotforge.cli import make_app
from cotforge.schemas.groups import Group, Grouped, flat_fields
from cotforge.sweeps import SweepSettings
from cotforge.train.config import Optimisation, TrainConfig, cli

WIDE = {"COLUMNS": "300"}


class WarmupOptimisation(Optimisation):
    warmup_steps: int | None = Field(
        default=None, gt=0, description="Warm up over this many steps", json_schema_extra=cli(default="by ratio")
    )


class WithWarmupSteps(TrainConfig):
    optimisation: WarmupOptimisation = WarmupOptimisation()


def test_a_setting_added_to_a_group_is_offered_by_train_and_sweep_with_its_help() -> None:
    app = make_app(WithWarmupSteps)
    for command in ("train", "sweep"):
        shown = CliRunner().invoke(app, [command, "--help"], env=WIDE).output
        assert "--warmup-steps" in shown and "Warm up over this many steps. Default: by ratio" in shown, command
    plain = CliRunner().invoke(make_app(), ["train", "--help"], env=WIDE).output
    assert "--warmup-steps" not in plain


def test_the_added_setting_reaches_the_config_of_both(
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
    assert isinstance(seen["train"], WithWarmupSteps) and seen["train"].optimisation.warmup_steps == 5
    swept = CliRunner().invoke(
        app,
        ["sweep", "--dataset", str(paper_build), "--student", "s", "--out", str(tmp_path), "--warmup-steps", "7"],
    )
    assert swept.exit_code == 0, swept.output
    optimisation = seen["sweep"].optimisation
    assert optimisation.warmup_steps == 7 and optimisation.learning_rate == 1e-4, "the sweep's own default kept"


def test_defaults_agree_and_the_sweep_states_its_own_once() -> None:
    train_help = CliRunner().invoke(make_app(), ["train", "--help"], env=WIDE).output
    sweep_help = CliRunner().invoke(make_app(), ["sweep", "--help"], env=WIDE).output
    assert "Peak learning rate (cosine, after --warmup-ratio). Default: 5e-05" in train_help
    assert "Peak learning rate (cosine, after --warmup-ratio). Default: 0.0001" in sweep_help
    assert "Default: 0.8" in sweep_help and "Default: 512" in sweep_help  # the model's numbers, not a restatement
    assert Optimisation.model_fields["learning_rate"].default == 5e-5
    assert SweepSettings.model_fields["optimisation"].default.learning_rate == 1e-4


COMMANDS = typer.main.get_command(make_app()).commands


def _options(command: str) -> set[str]:
    return {p.name for p in COMMANDS[command].params if p.param_type_name == "option" and p.name != "help"}


def test_every_option_of_train_and_sweep_is_a_setting_a_model_declares() -> None:
    for command in ("train", "sweep"):
        models = COMMANDS[command].callback.declared_by
        assert TrainConfig in models or SweepSettings in models, command
        settings = {name for model in models for name in flat_fields(model)}
        assert _options(command) - settings == set(), command
    swept = _options("sweep")
    assert {"learning_rate", "lora_rank", "template", "memory_check"} <= swept
    cell_decides = {"model", "subset", "mixture", "seed", "batching", "output_dir", "cpu_offload", "merge_lora"}
    assert swept & cell_decides == set(), "a cell decides its data, student, seed and output"


def test_flat_names_and_groups_make_the_same_config() -> None:
    flat = TrainConfig(model="m/x.gguf", dataset="d", learning_rate=1e-4, lora_rank=4, merge_lora=True)
    grouped = TrainConfig(
        data={"dataset": "d"},
        student={"model": "m", "gguf_file": "x.gguf"},
        optimisation=Optimisation(learning_rate=1e-4),
        adapter={"lora_rank": 4},
        output={"merge_lora": True},
    )
    assert flat == grouped and TrainConfig.model_validate(flat.flat()) == flat
    assert TrainConfig.model_validate(flat.model_dump()) == flat
    with pytest.raises(ValidationError, match="learning_rate: given twice, flat and in optimisation"):
        TrainConfig(model="m", dataset="d", learning_rate=1e-4, optimisation={"learning_rate": 2e-4})


def test_a_flat_name_is_declared_once() -> None:
    class One(Group):
        seed: int = 1

    class Other(Group):
        seed: int = 2

    with pytest.raises(TypeError, match="seed is declared twice"):

        class Twice(Grouped):
            one: One = One()
            other: Other = Other()


def test_lr_walks_from_the_flag_to_the_optimisation_group(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[TrainConfig] = []

    def fit(config: TrainConfig, log) -> SimpleNamespace:
        seen.append(config)
        return SimpleNamespace(steps=1, wall_time_s=0.0, history=[SimpleNamespace(loss=1.0)])

    monkeypatch.setattr("cotforge.api.train_student", fit)
    args = ["train", "--dataset", "x.parquet", "--model", "m", "--lr", "3e-4", "--preset", "paper"]
    assert CliRunner().invoke(make_app(), args).exit_code == 0
    assert seen[0].optimisation.learning_rate == 3e-4 and seen[0].optimisation.global_batch_size == 64
    refused = CliRunner().invoke(make_app(), ["train", "--dataset", "x.parquet", "--model", "m", "--lr", "-1"])
    assert refused.exit_code == 2 and "--lr: Input should be greater than 0" in refused.output
    unknown = CliRunner().invoke(make_app(), ["train", "--dataset", "x.parquet", "--model", "m", "--preset", "fast"])
    assert unknown.exit_code == 2 and "unknown preset 'fast'; choose paper" in unknown.output


def test_a_sweep_resumed_with_another_rate_is_refused_naming_the_setting(tmp_path: Path) -> None:
    from cotforge.sweeps import SweepError
    from cotforge.sweeps.cells import check_claim, claim
    from cotforge.sweeps.layout import SweepDir

    folder = SweepDir(tmp_path)
    claim(folder, SweepSettings(corpus="c", students=["s"]))
    check_claim(folder, SweepSettings(corpus="c", students=["s"], optimisation={"learning_rate": 1e-4}))
    with pytest.raises(SweepError, match=r"other settings \(learning_rate\)"):
        check_claim(folder, SweepSettings(corpus="c", students=["s"], learning_rate=3e-4))
