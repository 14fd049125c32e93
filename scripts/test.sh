#!/usr/bin/env bash
# Set up everything the tests need in the active Python environment, then run them all (integration tests too:
# a real SmolLM2 teacher on llama.cpp, a local Hub). The first run compiles llama.cpp (about 6 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "cotforge tests: about 9 minutes on a 2-core machine (measured: 9 min 3 s with setup). The first run also compiles llama.cpp (llama-cpp-python,
a portable build for any x86-64 machine with AVX2: about 6 minutes on 2 cores; cached for later runs)."
bash scripts/setup.sh dev
bash scripts/setup-test-servers.sh
python3 -m pytest -q "$@"
