"""How many of a weak teacher's answers validate into a recipe's answer_format, by how its schema is sent:
SmolLM2-135M-Instruct on llama-cpp-python's server answering the built-in SVAMP sample at level 1 with
`answer_format: {rationale: str, answer: float}`, the schema in the prompt alone (the baseline) against the schema
also as response_format (json_object with the schema: a grammar), in the same run on the same problems.

    nice python benchmarks/answer_format_structured.py [--limit 8] [--max-tokens 160]

Printed per arm: answers that validated (records), rejected as schema_mismatch (kept with the validation error)
or otherwise, and correct among the records. Correctness is the 135M teacher's; the validation share is what the
structured output changes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cotforge  # noqa: E402
from cotforge.schemas import Recipe  # noqa: E402
from tests.local_teacher import gguf_or_exit, llama_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()
    gguf = gguf_or_exit()
    with tempfile.TemporaryDirectory() as folder, llama_server(gguf) as url:
        for mode in ("prompt", "json_object"):
            recipe = Recipe(
                name=f"schema-{mode}",
                sources=[{"dataset": "svamp"}],
                teachers=[{"model": "smollm2-135m-instruct", "base_url": url, "max_retries": 1, "timeout_s": 300}],
                granularities=[1],
                limit=args.limit,
                sampling={"temperature": 0.0, "max_tokens": args.max_tokens},
                answer_format={"model": {"rationale": "str", "answer": "float"}, "structured_output": mode},
            )
            started = time.monotonic()
            corpus = cotforge.build(recipe, Path(folder) / mode, sample=True)
            records, rejections = corpus.records(), corpus.rejections()
            reasons = Counter(r.reason.value for r in rejections)
            first = next((r.detail for r in rejections if r.reason.value == "schema_mismatch"), "-")
            print(
                f"{mode:>11}: {len(records)}/{len(records) + len(rejections)} validated, rejected {dict(reasons)}, "
                f"{sum(r.correct for r in records)} correct, {time.monotonic() - started:.0f} s; first mismatch: "
                f"{first[:80]}"
            )


if __name__ == "__main__":
    main()
