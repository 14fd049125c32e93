#!/usr/bin/env bash
# A separate venv with TRL for benchmarks/train_throughput.py (CPU torch from the wheel on disk first).
set -euo pipefail
venv=${1:-/tmp/trl-venv}
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q trl
echo "TRL ready: python benchmarks/train_throughput.py --trl-python $venv/bin/python"
