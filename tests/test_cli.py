from __future__ import annotations

import re
import subprocess
import sys

from typer.testing import CliRunner

from cotforge.cli import app

runner = CliRunner()


def test_dry_run_offline_prints_the_plan() -> None:
    # The README's dry run, as a console script in a subprocess, with no key and no network.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cotforge.entry import build_cot_main; build_cot_main()",
            "--dry-run",
            "--sample",
            "--dataset",
            "svamp",
            "--teacher",
            "gpt-4o",
            "--granularity",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "30 x 1 x 1 x 1 = 30" in result.stdout
    cost = re.search(r"\$(\d+\.\d\d)", result.stdout)
    assert cost and 0 < float(cost.group(1)) < 1


def test_dry_run_grid_counts_and_unpriced_teacher() -> None:
    result = runner.invoke(
        app,
        [
            "build",
            "--dry-run",
            "--sample",
            "-d",
            "gsm8k",
            "-d",
            "obqa",
            "-t",
            "gpt-4o-mini",
            "-t",
            "my-local-model",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "-g",
            "1",
            "-g",
            "6",
            "-f",
            "cot",
            "-f",
            "rar",
            "-n",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "60 x 2 x 4 x 3 = 1,440" in result.output
    assert "unknown: no price for gpt-4o-mini, my-local-model" in result.output  # base_url: no list price


def test_level_zero_is_answer_only() -> None:
    result = runner.invoke(
        app,
        [
            "build",
            "--dry-run",
            "--sample",
            "-d",
            "svamp",
            "-t",
            "gpt-4o",
            "-g",
            "0",
            "-g",
            "2",
            "-f",
            "cot",
            "-f",
            "symbolic",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "30 x 1 x 3 x 1 = 90" in result.output  # (0, cot), (2, cot), (2, symbolic)


def test_flags_without_recipe_need_dataset_and_teacher() -> None:
    result = runner.invoke(app, ["build", "--dry-run", "--sample", "-d", "svamp"])
    assert result.exit_code == 2
    assert "--teacher" in result.output


def test_bad_flag_value_names_the_field() -> None:
    result = runner.invoke(app, ["build", "--dry-run", "--sample", "-d", "svamp", "-t", "gpt-4o", "-g", "9"])
    assert result.exit_code == 2
    assert "granularities[0]" in result.output


def test_recipes_command_lists_builtins() -> None:
    result = runner.invoke(app, ["recipes"])
    assert result.exit_code == 0
    for name in ("paper-grid", "gsm8k", "strategyqa"):
        assert name in result.output
