#!/usr/bin/env bash
# Set up everything the tests need in the active Python environment, then run them all (integration tests too:
# a real SmolLM2 teacher on llama.cpp, a local Hub). The first run compiles llama.cpp (about 6 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
bash scripts/setup-test-servers.sh
python3 -m pytest -q "$@"
