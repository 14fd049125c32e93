#!/usr/bin/env bash
# Install cotforge into the active Python environment, with the extras named as arguments (e.g. `dev`, `gguf`).
#
# PyTorch comes first, picked for this machine. From PyPI alone, `pip install torch` on Linux gives the CUDA build
# (several GB of nvidia-* packages), which a machine without an NVIDIA GPU cannot use. So:
#   - torch already installed: kept as it is;
#   - an NVIDIA GPU (nvidia-smi lists one): the CUDA build from PyPI;
#   - no GPU: a CPU wheel that pip's find-links offer (these 2-core machines keep one on disk), else PyTorch's
#     CPU index (download.pytorch.org/whl/cpu), and only if that cannot be reached, PyPI's default build.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
pip=(python3 -m pip install -q)

if python3 -c "import torch" 2>/dev/null; then
    echo "torch $(python3 -c 'import torch; print(torch.__version__)') is already installed"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "NVIDIA GPU found: installing the CUDA build of torch"
    "${pip[@]}" torch
elif "${pip[@]}" --no-index --no-deps torch 2>/dev/null; then
    version=$(python3 -c 'from importlib.metadata import version; print(version("torch").split("+")[0])')
    echo "no GPU: installed the local CPU wheel of torch $version"
    "${pip[@]}" "torch==$version"  # its dependencies
elif "${pip[@]}" torch --index-url https://download.pytorch.org/whl/cpu; then
    echo "no GPU: installed torch's CPU build from download.pytorch.org"
else
    echo "no GPU, and no CPU build of torch could be fetched: installing PyPI's default (CUDA) build" >&2
    "${pip[@]}" torch
fi

extras=$(IFS=,; echo "$*")
"${pip[@]}" -e ".${extras:+[$extras]}"
