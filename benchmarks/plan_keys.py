"""Planning a million answers' keys: the plan (JSON made once per teacher, level and format, then one hash per key)
against the full serialisation of every key, which gives the same keys (tests/test_resume.py), in one process.

    python benchmarks/plan_keys.py [--problems 100000] [--samples 5] [--levels 2]

The no-op resume of a 1M-answer build plans every key to compare it with the store's; this is that part alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from cotforge.builders.plan import plan_jobs
    from cotforge.recipes.prompts import prompt_version
    from cotforge.recipes.sources import LoadedSource
    from cotforge.schemas import Recipe
    from cotforge.schemas.problem import AnswerType, Problem
    from cotforge.schemas.recipe import FormatMode

    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--levels", type=int, default=2)
    args = parser.parse_args()
    recipe = Recipe.model_validate(
        {
            "name": "keys",
            "sources": [{"dataset": "gsm8k"}],
            "teachers": [{"model": "gpt-4o"}],
            "granularities": list(range(1, args.levels + 1)),
            "sampling": {"n": args.samples},
        }
    )
    problems = [
        Problem(dataset="gsm8k", split="train", id=f"p{i}", question=f"Question {i}: how many apples are left?",
                answer=str(i), answer_type=AnswerType.number)
        for i in range(args.problems)
    ]  # fmt: skip
    sources = [LoadedSource.of("gsm8k", problems)]
    sampling = recipe.sampling.model_dump(mode="json", exclude={"n"})

    started = time.perf_counter()
    planned = {key for job in plan_jobs(recipe, sources) for key in job.keys}
    plan_s = time.perf_counter() - started

    started = time.perf_counter()
    reference = set()
    teacher, fmt = recipe.teachers[0], recipe.formats[0]
    for problem in problems:
        for level in recipe.granularities:
            version = prompt_version(problem.answer_type, level, fmt, recipe.prompt_mode, FormatMode.direct)
            for sample in range(args.samples):
                payload = {
                    "problem": [problem.dataset, problem.split, problem.id, problem.question, problem.answer],
                    "teacher": [teacher.backend, teacher.model, teacher.base_url],
                    "sampling": sampling,
                    "granularity": level,
                    "format": fmt.value,
                    "format_mode": recipe.format_mode.value,
                    "prompt_version": version,
                    "sample": sample,
                }
                reference.add(hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32])
    reference_s = time.perf_counter() - started
    assert planned == reference, "the plan's keys differ from the full serialisation's"
    keys = len(planned)
    print(json.dumps({"keys": keys, "plan_s": round(plan_s, 2), "plan_us_per_key": round(plan_s / keys * 1e6, 2),
                      "full_json_s": round(reference_s, 2), "full_json_us_per_key": round(reference_s / keys * 1e6, 2),
                      "speedup": round(reference_s / plan_s, 2)}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
