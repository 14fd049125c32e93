"""Peak memory per rank: DDP against FSDP2 (and LoRA under DDP) on two CPU processes (gloo), the same student, data
and batch, with the trainer's memory plan beside each measured peak.

    python benchmarks/train_memory.py [--steps 3] [--micro-batch 2] [--max-length 512]

Student: SmolLM2-135M-Instruct (as in train_throughput.py), fp32. Each run is `torchrun --nproc-per-node 2 -m cotforge
train` in a fresh process group; the peak is each rank's resident-set peak (train_report.json keeps them all).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_throughput import paper_corpus, student_folder  # noqa: E402

GB = 1e9


def run(options: list[str], model: Path, corpus: Path, out: Path, args: argparse.Namespace, port: int) -> dict:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
        "-m", "cotforge", "train", "--dataset", str(corpus), "--subset", "gpt-4o-g5-cot", "--model", str(model),
        "--out", str(out), *options, "--max-steps", str(args.steps), "--max-length", str(args.max_length),
        "--micro-batch-size", str(args.micro_batch), "--global-batch-size", str(2 * args.micro_batch),
        "--lr", "5e-5", "--seed", "100",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads((out / "train_report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--micro-batch", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "cotforge-bench"))
    args = parser.parse_args()
    cache = Path(args.cache)
    model = student_folder(cache)
    corpus = paper_corpus(cache)
    print(f"2 processes, {args.micro_batch} rows x {args.max_length} tokens per micro-batch, {args.steps} steps, CPU")
    print(f"{'run':<10} {'plan GB':>8} {'weights':>8} {'grads':>6} {'AdamW':>6} {'activ.':>7} {'logits':>7} "
          f"{'peak GB rank 0':>15} {'rank 1':>7}")  # fmt: skip
    runs = {
        "ddp": ["--shard", "ddp"],
        "fsdp": ["--shard", "fsdp"],
        "ddp+lora": ["--shard", "ddp", "--lora-rank", "16"],  # adapters on every linear layer of the blocks
    }
    for port, (name, options) in enumerate(runs.items(), start=29650):
        report = run(options, model, corpus, cache / f"memory-{name.replace('+', '-')}", args, port)
        plan = report["memory_plan"]
        peaks = [mb * 2**20 / GB for mb in report["peak_memory_mb_per_rank"]]
        parts = " ".join(
            f"{plan[name] / GB:>{width}.2f}"
            for name, width in (("weights", 8), ("gradients", 6), ("optimizer", 6), ("activations", 7), ("logits", 7))
        )
        print(f"{name:<10} {plan['total'] / GB:>8.2f} {parts} {peaks[0]:>15.2f} {peaks[1]:>7.2f}")


if __name__ == "__main__":
    main()
