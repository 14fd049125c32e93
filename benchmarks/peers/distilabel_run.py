"""distilabel's OpenAILLM against the same server: N prompts at a given concurrency; prints seconds as JSON."""

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


started = time.monotonic()
answers = asyncio.run(main())
print(json.dumps({"seconds": time.monotonic() - started, "answers": answers}))
