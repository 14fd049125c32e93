"""NVIDIA Data Designer against the same server: N prompts at one concurrency; prints seconds, CPU seconds as JSON.

The prompts are a seed dataset and one LLM text column; concurrency is the model's `max_parallel_requests`, the
per-model ceiling its documentation says to set (its AIMD request admission only lowers it on HTTP 429, which the
scripted server never sends). The run config keeps its defaults (row groups of 1,000, three active at once), so
the result is what `DataDesigner.create` leaves on disk: a Parquet file per finished row group, then its profile.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import data_designer.config as dd
import pandas as pd
from data_designer.interface import DataDesigner

url, n, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
artifacts = tempfile.TemporaryDirectory(prefix="data-designer-")  # removed once its count is read
designer = DataDesigner(
    artifacts.name,
    model_providers=[dd.ModelProvider(name="scripted", endpoint=url, provider_type="openai", api_key="EMPTY")],
)
# The metrics endpoint would bind a fixed local port; this run has no reader for it.
designer.set_run_config(dd.RunConfig(otel_metrics_port=None))
builder = dd.DataDesignerConfigBuilder(
    model_configs=[
        dd.ModelConfig(
            alias="teacher",
            model="gpt-4o-mini",
            provider="scripted",
            skip_health_check=True,
            inference_parameters=dd.ChatCompletionInferenceParams(max_tokens=64, max_parallel_requests=concurrency),
        )
    ]
)
builder.with_seed_dataset(
    dd.DataFrameSeedSource(df=pd.DataFrame({"question": [f"question {i} answer=5" for i in range(n)]}))
)
builder.add_column(dd.LLMTextColumnConfig(name="answer", prompt="{{ question }}", model_alias="teacher"))
started, cpu = time.monotonic(), time.process_time()
result = designer.create(builder, num_records=n, dataset_name="bench")
seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu
answers = int(result.load_dataset()["answer"].notna().sum())
artifacts.cleanup()
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "answers": answers}))
