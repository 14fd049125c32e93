"""Model FLOPs utilisation (MFU): the matmul FLOPs a training step needs, over what the device could do in its time.

FLOPs per token (the convention of PaLM's appendix B, with causal attention counted as computed):
    4·N + 2·N_trained + 12·L·d·c
N: the parameters that are matmul weights (all but an untied input embedding, a lookup; the norms' few weights count
too, and a 4-bit weight counts as its full shape); the forward pass costs
2·N, the backward pass 2·N for the activations' gradients and 2·N_trained for the weights' (so 6·N for full
fine-tuning, about 4·N for LoRA). L layers of attention width d (heads x head size): QKᵀ and AV cost 4·d per pair of
tokens forward, three times that with the backward pass, over c, the mean number of keys a token attends to; a
token attends only within its example, causally, so c = Σ len² / (2 Σ len) over the examples. Recomputation
(gradient checkpointing) is not counted: MFU counts the model's work, not the run's.

The peak is the device's dense bf16 tensor-core rate from its data sheet, known for a few GPUs; elsewhere (the CPU,
fp32 compute, an unlisted GPU) MFU is left unknown rather than guessed.
"""

from __future__ import annotations

import math
from typing import Any

import torch

PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12}  # dense, per GPU (SXM parts)


def flops_per_token(model: Any, lengths: list[int]) -> float:
    """The formula above for `model` (before sharding: parameters whole) trained on examples of these lengths."""
    config = model.config
    embedding = model.get_input_embeddings().weight
    untied = 0 if embedding is model.get_output_embeddings().weight else embedding.numel()
    weights = sum(_elements(p) for p in model.parameters()) - untied
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad) - (untied if embedding.requires_grad else 0)
    width = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    context = sum(n * n for n in lengths) / (2 * max(1, sum(lengths)))
    return 4 * weights + 2 * trained + 12 * config.num_hidden_layers * width * context


def _elements(parameter: torch.Tensor) -> int:
    """A parameter's elements; bitsandbytes' 4-bit ones store two per byte and keep their shape in quant_state."""
    shape = getattr(getattr(parameter, "quant_state", None), "shape", None)
    return math.prod(shape) if shape is not None else parameter.numel()


def peak_flops(device: torch.device, compute: torch.dtype) -> float | None:
    """The device's dense bf16 peak (FLOP/s) where known and the run computes in bf16; else None."""
    if device.type != "cuda" or compute != torch.bfloat16:
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for gpu, peak in PEAK_BF16_FLOPS.items() if gpu in name), None)


def utilisation(flops_per_token: float, tokens: int, seconds: float, peak: float | None, world: int) -> float | None:
    return None if peak is None or seconds <= 0 else flops_per_token * tokens / (seconds * peak * world)
