"""Cells in parallel: `--jobs N` runs N cells at once, each in a process of its own with its share of the cores (or its
GPU), writing the sweep folder exactly as a serial run does; a failed or killed cell fails alone, is named with its
reason, and is re-run on resume; `--ray` runs each cell as a Ray task on a local two-CPU cluster."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.sweeps import CellsFailed, LocalPool, RayCluster, Serial, SweepError, build_report, run_sweep
from cotforge.sweeps.executors import Slot, available_cores, executor_for, local_slots

from . import test_sweep
from .test_sweep import settings

pytestmark = pytest.mark.integration
corpus = test_sweep.corpus  # the fixture: levels 1 and 5 of GPT-4o on 23 SVAMP problems
THREADS = max(1, available_cores() // 2)  # a cell's share of the cores with two at once


def measured(folder: Path) -> dict[str, tuple]:
    """What each cell measured, by name: what a serial run and a parallel one must agree on."""
    cells = {}
    for path in sorted(folder.glob("cells/*/cell.json")):
        cell = json.loads(path.read_text())
        predictions = pl.read_parquet(folder / cell["predictions"])
        cells[cell["name"]] = (
            cell["accuracy"],
            cell["correct"],
            cell["final_loss"],
            cell["steps"],
            predictions["problem_id"].to_list(),
            predictions["correct"].to_list(),
            predictions.drop("latency_s", strict=False).columns,
        )
    return cells


@contextlib.contextmanager
def parallel_cells_threads() -> Iterator[None]:
    """This process with the torch threads a parallel cell gets: a matrix product's sums are grouped by thread, so
    the same count is what makes a serial cell's numbers equal a parallel one's to the last bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def serial(corpus: Path, student: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two cells run one after another in this process."""
    out = tmp_path_factory.mktemp("serial")
    with parallel_cells_threads():
        _, left = run_sweep(settings(corpus, student), out, log=lambda _: None)
    assert left == []
    return out


def test_two_jobs_run_at_once_split_the_cores_and_measure_what_a_serial_run_does(
    corpus: Path, student: Path, serial: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    lines: list[str] = []
    _, left = run_sweep(settings(corpus, student), tmp_path, executor=LocalPool.of(2), log=lines.append)
    assert left == []
    starts = [i for i, line in enumerate(lines) if ": training 2 steps" in line]
    ends = [i for i, line in enumerate(lines) if ": accuracy" in line]
    assert len(starts) == len(ends) == 2 and max(starts) < min(ends), "both cells started before either finished"
    assert all(f", torch threads {THREADS})" in lines[i] for i in starts)
    children = capfd.readouterr().err  # the cells' own logs, from their processes
    pids = {line.split("process ")[1].split(":")[0] for line in children.splitlines() if ": process " in line}
    assert len(pids) == 2 and str(os.getpid()) not in pids
    assert children.count(f": torch threads {THREADS}, GPU none") == 2, "each process set its share of the cores"
    assert measured(tmp_path) == measured(serial) and len(measured(serial)) == 2
    assert (tmp_path / "sweep.json").read_text() == (serial / "sweep.json").read_text(), "--jobs is no setting"


def test_a_killed_cell_fails_alone_and_is_run_again_on_resume(
    corpus: Path, student: Path, serial: Path, tmp_path: Path
) -> None:
    chosen = settings(corpus, student)

    def kill_the_g5_cell(line: str) -> None:
        if "g5--seed1: training" in line:  # its process has just started: killed as a machine's OOM killer would
            os.kill(int(line.split("(process ")[1].split(",")[0]), signal.SIGKILL)

    with pytest.raises(CellsFailed) as failed:
        run_sweep(chosen, tmp_path, executor=LocalPool.of(2), log=kill_the_g5_cell)
    [failure] = failed.value.failures
    assert failure.name.endswith("--g5--seed1") and not failure.bad_input
    assert "exit code -9" in failure.reason and failure.name in str(failed.value)
    [kept] = tmp_path.glob("cells/*/cell.json")
    assert "--g1--seed1" in str(kept), "the other cell ran to the end"
    stamp = kept.stat().st_mtime_ns
    half_run = tmp_path / "cells" / failure.name / "data"
    half_run.mkdir(parents=True, exist_ok=True)
    (half_run / "left-over").write_text("from the killed run")

    lines: list[str] = []
    with parallel_cells_threads():
        _, left = run_sweep(chosen, tmp_path, executor=Serial(), log=lines.append)  # any executor resumes another's
    assert left == [] and kept.stat().st_mtime_ns == stamp
    assert sum("training 2 steps" in line for line in lines) == 1 and not (half_run / "left-over").exists()
    assert measured(tmp_path) == measured(serial)
    assert len(build_report(tmp_path).cells) == 2


def test_a_cell_refused_for_its_input_is_named_others_finish_and_exit_is_2(
    corpus: Path, student: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "late-student"
    command = [
        *("sweep", "--dataset", str(corpus), "--out", str(tmp_path / "sweep"), "--levels", "1,5", "--no-baselines"),
        *("--student", str(student), "--student", str(missing), "--jobs", "2", "--max-steps", "2"),
        *("--global-batch-size", "4", "--micro-batch-size", "4", "--max-length", "128", "--max-new-tokens", "6"),
    ]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "cell late-student--g1--seed1 failed: " in result.output and str(missing) in result.output
    assert "2 cells failed" in result.output and "Traceback" not in result.output
    assert len(list((tmp_path / "sweep").glob("cells/*/cell.json"))) == 2, "the good student's cells finished"
    shutil.copytree(student, missing)  # the student arrives; the same command finishes the sweep
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0, again.output
    assert len(build_report(tmp_path / "sweep").cells) == 4


def test_ray_runs_each_cell_as_a_task_on_two_cpu_workers(
    corpus: Path, student: Path, serial: Path, tmp_path: Path
) -> None:
    if importlib.util.find_spec("ray") is None:
        message = "needs Ray: pip install 'cotforge[sweep-ray]' (in dev)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    try:
        lines: list[str] = []
        _, left = run_sweep(settings(corpus, student), tmp_path, executor=RayCluster(), log=lines.append)
        assert ray.cluster_resources()["CPU"] == 2
    finally:
        ray.shutdown()
    assert left == [] and sum("(Ray task, CPUs 1)" in line for line in lines) == 2
    if THREADS == 1:  # then the serial cells had a Ray task's one thread, and the numbers are the same
        assert measured(tmp_path) == measured(serial)
    report = build_report(tmp_path)
    assert len(report.cells) == 2 and (tmp_path / "sweep_report.md").exists()


def test_ray_and_jobs_are_refused_as_usage_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    base = ["sweep", "--dataset", "x", "--student", "s", "--out", str(tmp_path)]
    both = CliRunner().invoke(app, [*base, "--jobs", "2", "--ray", "local"])
    assert both.exit_code == 2 and "give --jobs or --ray, not both" in both.output
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    missing = CliRunner().invoke(app, [*base, "--ray", "local"])
    assert missing.exit_code == 2 and "pip install 'cotforge[sweep-ray]'" in missing.output
    assert not tmp_path.joinpath("corpus").exists(), "refused before the corpus is fetched"


def test_each_job_gets_a_gpu_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # the GPUs this sweep was given: its cells share them out
    slots = local_slots(2)
    assert [slot.gpu for slot in slots] == ["3", "5"] and slots[0].threads == THREADS
    assert slots[1].environment() == {"OMP_NUM_THREADS": str(THREADS), "CUDA_VISIBLE_DEVICES": "5"}
    with pytest.raises(SweepError, match="--jobs 3: this machine has 2 GPUs"):
        local_slots(3)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert isinstance(executor_for(1), Serial) and executor_for(2) == LocalPool((Slot(None, THREADS),) * 2)
