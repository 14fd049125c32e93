"""Load a student (tokenizer and causal LM) from a Hub id, a folder, or a GGUF file, with errors a user can act on.

Code shipped inside a model folder or a Hub repo is never run: trust_remote_code=False is passed explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class StudentError(ValueError):
    """A student that cannot be loaded; the message names the model and why."""


def _cannot_load(model: str, error: Exception) -> StudentError:
    if model.startswith((".", "/", "~")) and not Path(model).expanduser().exists():
        return StudentError(f"--model {model}: no such folder")
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "trust_remote_code" in str(error):
        return StudentError(
            f"--model {model}: it needs its own Python code to load (custom model classes), and cotforge never runs "
            "code from a model folder (trust_remote_code=False); use a model transformers supports natively"
        )
    return StudentError(f"--model {model}: cannot load it ({text}); give a local folder or a Hub id you can reach")


def load_tokenizer(model: str, gguf_file: str | None = None) -> Any:
    from transformers import AutoTokenizer

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=False, **extra)
    except (OSError, ValueError) as error:  # not found, offline, not a model folder, bad GGUF
        raise _cannot_load(model, error) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    model: str,
    gguf_file: str | None = None,
    dtype: torch.dtype = torch.float32,
    attention: str = "sdpa",
    quantization: Any = None,
    device: torch.device | None = None,
) -> Any:
    """A causal LM from a Hub id or folder, or from a GGUF file there (dequantized into a plain, savable model).
    `quantization` (a transformers quantization config, e.g. bitsandbytes 4-bit) loads it straight onto `device`."""
    from transformers import AutoModelForCausalLM

    try:
        if quantization is not None:
            return AutoModelForCausalLM.from_pretrained(
                model,
                dtype=dtype,
                attn_implementation=attention,
                quantization_config=quantization,
                device_map={"": device},
                trust_remote_code=False,
            )
        if not gguf_file:
            return AutoModelForCausalLM.from_pretrained(
                model, dtype=dtype, attn_implementation=attention, trust_remote_code=False
            )
        loaded = AutoModelForCausalLM.from_pretrained(model, gguf_file=gguf_file, dtype=dtype, trust_remote_code=False)
    except (OSError, ValueError) as error:
        raise _cannot_load(model, error) from None
    config = loaded.config
    config.__dict__.pop("quantization_config", None)  # the weights are plain tensors once dequantized
    config._attn_implementation = attention
    plain = AutoModelForCausalLM.from_config(config, dtype=dtype)
    plain.load_state_dict(loaded.state_dict())
    return plain


def compute_dtype(device: torch.device) -> torch.dtype:
    """bf16 on a GPU that has it (under autocast, over fp32 master weights), fp32 elsewhere."""
    return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32


def attention_for(device: torch.device, compute: torch.dtype) -> str:
    """Flash attention where it runs: a GPU, the package installed, half-precision compute (a GPU without bf16
    trains in fp32, which FA2 refuses); SDPA elsewhere."""
    if device.type != "cuda" or compute not in (torch.bfloat16, torch.float16):
        return "sdpa"
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return "sdpa"
    return "flash_attention_2"


def load_student(
    model: str,
    gguf_file: str | None,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    quantization: Any = None,
    compute: torch.dtype = torch.float32,
    place: bool = True,
) -> Any:
    """The model for `device` with weights in `dtype`, flash attention when it can run in `compute`; on `device`
    unless `place` is false (FSDP places it while sharding), or quantized (loaded there)."""
    loaded = load_causal_lm(model, gguf_file, dtype, attention_for(device, compute), quantization, device)
    return loaded.to(device) if place and quantization is None else loaded
