#!/usr/bin/env bash
# Set up everything the tests need in the active Python environment, then run them all (integration tests too:
# a real SmolLM2 teacher on llama.cpp, a local Hub). The first run compiles llama.cpp (about 6 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "cotforge tests: 834 tests in two processes, measured 8 min 40 s on a 2-core machine that set up a fresh environment beside them. The first run also compiles llama.cpp (llama-cpp-python,
a portable build for any x86-64 machine with AVX2: about 6 minutes on 2 cores; cached for later runs)."
bash scripts/setup.sh dev
bash scripts/setup-test-servers.sh
# Two processes (pytest-xdist), each test file whole in one: a file's module fixtures (a loaded model, a trained
# student) are made once, and while one process waits on a subprocess's start-up or a server the other computes.
# Arguments go to pytest after these (`-n 0`: one process).
python3 -m pytest -q -n 2 --dist loadfile "$@"
