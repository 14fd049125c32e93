"""distilabel's OpenAILLM against the same server: N prompts at one concurrency; prints seconds, CPU seconds as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from distilabel.models import OpenAILLM

url, n, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = OpenAILLM(model="gpt-4o-mini", base_url=url, api_key="EMPTY", max_retries=0)
llm.load()
inputs = [[{"role": "user", "content": f"question {i} answer=5"}] for i in range(n)]


async def main() -> int:
    # distilabel's own batching: `generate` runs one batch of inputs concurrently (asyncio.gather of agenerate).
    done = 0
    for start in range(0, n, concurrency):
        batch = inputs[start : start + concurrency]
        results = await asyncio.gather(*(llm.agenerate(input=x, max_new_tokens=64) for x in batch))
        done += len(results)
    return done


started, cpu = time.monotonic(), time.process_time()
answers = asyncio.run(main())
seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "answers": answers}))
