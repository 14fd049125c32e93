#!/usr/bin/env bash
# Set up cotforge (CPU torch first, then the package) and run the built-in demo offline.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e .
build-cot --dry-run --sample --dataset svamp --teacher gpt-4o --granularity 5
