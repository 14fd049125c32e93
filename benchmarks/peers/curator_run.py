"""Bespoke Curator against the same server: N prompts at a given concurrency; prints seconds, CPU seconds as JSON."""

from __future__ import annotations

import json
import sys
import time

from bespokelabs import curator

url, n, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = curator.LLM(
    model_name="gpt-4o-mini",
    backend="openai",
    backend_params={
        "base_url": url,
        "api_key": "EMPTY",
        "max_requests_per_minute": 10**7,
        "max_tokens_per_minute": 10**10,
        "max_concurrent_requests": concurrency,
        "require_all_responses": False,
    },
)
prompts = [f"question {i} answer=5" for i in range(n)]
started, cpu = time.monotonic(), time.process_time()
result = llm(prompts)
seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "answers": len(result.dataset)}))
