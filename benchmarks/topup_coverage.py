"""Top-up sampling against n samples, with a weak real teacher (SmolLM2-135M-Instruct on llama.cpp's server).

    nice python benchmarks/topup_coverage.py [--limit 10] [--level 1] [--attempts 4] [--max-tokens 256]
        [--prompt-mode blind|gold_hinted]

Both builds ask the built-in SVAMP sample's first `limit` problems at one level with `keep: correct`: the baseline
with `n: attempts` (every problem asked `attempts` times), top-up with `until_correct: 1, max_attempts: attempts`
(asked again only while no answer is right). Printed: problems covered (at least one correct answer) and answers
paid, for each, and top-up's attempts histogram.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cotforge  # noqa: E402
from cotforge.builders.store import Store  # noqa: E402
from cotforge.corpus import BuildDir  # noqa: E402
from cotforge.schemas import CoTRecord, Recipe  # noqa: E402
from tests.local_teacher import gguf_or_exit, llama_server  # noqa: E402


def covered(out: Path) -> int:
    """Problems with at least one correct answer stored."""
    with Store(BuildDir(out).store_path) as store:
        return len({row.problem_id for row in store.rows() if isinstance(row, CoTRecord) and row.correct})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--attempts", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--prompt-mode", default="blind", choices=["blind", "gold_hinted"])
    args = parser.parse_args()
    gguf = gguf_or_exit()
    folder = Path(tempfile.mkdtemp())
    arms = {
        f"n: {args.attempts}": {"sampling": {"n": args.attempts, "max_tokens": args.max_tokens}},
        f"until_correct: 1, max_attempts: {args.attempts}": {
            "sampling": {"max_tokens": args.max_tokens},
            "until_correct": 1,
            "max_attempts": args.attempts,
        },
    }
    setup = f"first {args.limit} problems, level {args.level}, {args.prompt_mode} prompts, keep: correct"
    print(f"SVAMP sample, {setup}, SmolLM2-135M on llama.cpp")
    print("| arm | problems covered | answers paid | wall s |")
    print("|---|---:|---:|---:|")
    histogram = None
    with llama_server(gguf) as url:
        for name, changes in arms.items():
            teacher = {"model": "smollm2-135m-instruct", "base_url": url, "max_concurrency": 2, "timeout_s": 300}
            recipe = Recipe.model_validate(
                {
                    "sources": ["svamp"],
                    "teachers": [teacher],
                    "granularities": [args.level],
                    "limit": args.limit,
                    "keep": "correct",
                    "prompt_mode": args.prompt_mode,
                    **changes,
                }
            )
            out = folder / name.split(":")[0]
            started = time.monotonic()
            report = cotforge.build(recipe, out, sample=True).report
            paid = report.accepted + sum(report.rejected.values())
            print(f"| {name} | {covered(out)} of {args.limit} | {paid} | {time.monotonic() - started:.0f} |")
            histogram = report.coverage.attempts if report.coverage is not None else histogram
    print(f"top-up attempts per problem: {histogram}")


if __name__ == "__main__":
    main()
