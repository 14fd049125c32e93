"""The memory a training run needs per rank, planned before the first step, and the check that refuses one that
cannot fit the device it runs on.

Parameters: weights as stored, then gradients and AdamW's two moments, fp32 each, for the trained ones, and where
AdamW is not fused (off CUDA) the parameter-sized temporary its step makes. The trainer keeps fp32 master weights
and computes in bf16 under autocast on CUDA; a LoRA base is frozen, in bf16 or 4-bit. Weights, gradients and
optimizer state sharded (FSDP) are divided over the ranks. Activations follow Korthikanti et al. 2022 ("Reducing
Activation Recomputation in Large Transformer Models"): per layer, tokens x hidden x 34 bytes at 16 bits, plus
5 x heads x tokens x length bytes for the attention weights where the attention path keeps them (eager attention;
SDPA's fused kernels and flash attention keep none, masked or not); gradient checkpointing keeps only each layer's
input, and one layer's activations at a time. Logits are made only at completion positions, one chunk of tokens at
a time (loss.py), beside an fp32 gradient of the output layer. FSDP's CPU offload keeps the fp32 shards, their
gradients and AdamW's state in host memory (`host`); the device then holds only what is gathered at a time, in the
compute dtype: the root's own parameters (embeddings, final norm), the block computing and the one prefetched,
and the fp32 gradients of a block and of the root before they are reduced and moved out. The plan is an estimate:
the check leaves a margin and can be turned off.
"""

from __future__ import annotations

import os
import resource
from dataclasses import asdict, dataclass
from typing import Any

import torch

from cotforge.train.loss import chunk_rows

GB = 1e9
MARGIN = 0.9  # refuse above this share of the device: allocator fragmentation, CUDA context, buffers


class MemoryPlanError(ValueError):
    """A run whose plan does not fit the device; the message names the knobs that would make it fit."""


@dataclass(frozen=True)
class MemoryPlan:
    """Expected bytes per rank, by part."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    device: str
    capacity: float | None  # what the device offers (bytes); None when unknown
    host: float = 0.0  # what CPU offload keeps in host memory instead (bytes); not part of the total

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.logits

    def describe(self) -> str:
        parts = ", ".join(
            f"{name} {getattr(self, name) / GB:.2f}"
            for name in ("weights", "gradients", "optimizer", "activations", "logits")
        )
        room = f" of {self.capacity / GB:.1f} GB on {self.device}" if self.capacity else f" on {self.device}"
        host = f"; {self.host / GB:.2f} GB offloaded to the CPU" if self.host else ""
        return f"memory plan per rank: {self.total / GB:.2f} GB{room} ({parts} GB){host}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def plan_memory(
    model: Any,
    *,
    micro_batch_size: int,
    max_length: int,
    world_size: int,
    sharded: bool,
    gradient_checkpointing: bool,
    attention_weights_kept: bool,
    fused_optimizer: bool,
    activation_bytes: int,
    device: torch.device,
    cpu_offload: bool = False,
) -> MemoryPlan:
    """The plan for `model` (already built: its parameter counts are exact, whole even once sharded) under these
    settings; `cpu_offload` only with `sharded`."""
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stored = sum(p.numel() * p.element_size() for p in model.parameters())  # exact: fp32, bf16 or 4-bit bases
    shards = world_size if sharded else 1
    config = model.config
    hidden = config.hidden_size
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    tokens = micro_batch_size * max_length
    scale = activation_bytes / 2  # the paper's figures are for 16-bit activations
    per_layer = tokens * hidden * 34 * scale
    if attention_weights_kept:
        per_layer += 5 * heads * tokens * max_length * scale
    if gradient_checkpointing:
        activations = layers * tokens * hidden * activation_bytes + per_layer
    else:
        activations = layers * per_layer
    vocab = config.vocab_size
    logits = min(tokens, chunk_rows(vocab)) * vocab * 4 * 2 + vocab * hidden * 4 * 2  # a chunk; the head's gradient
    weights = stored / shards
    gradients = trained * 4 / shards
    # AdamW's two moments; unfused (foreach) AdamW also makes a parameter-sized temporary for its denominator
    optimizer = trained * (8 if fused_optimizer else 12) / shards
    host = 0.0
    if cpu_offload:
        host = weights + gradients + optimizer
        largest, root = _gathered_at_once(model)
        weights = (root + 2 * largest) * activation_bytes
        gradients = (root + largest) * 4
        optimizer = 0.0
    return MemoryPlan(
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        activations=activations,
        logits=logits,
        device=str(device),
        capacity=device_capacity(device),
        host=host,
    )


def _gathered_at_once(model: Any) -> tuple[int, int]:
    """Parameter counts FSDP gathers: the largest transformer block's, and the root's own (outside every block)."""
    from cotforge.train.sharding import blocks

    sizes = [sum(p.numel() for p in block.parameters()) for block in blocks(model)]
    return max(sizes), sum(p.numel() for p in model.parameters()) - sum(sizes)


def device_capacity(device: torch.device) -> float | None:
    """Bytes one rank may use: its GPU's memory, or on the CPU the machine's available memory shared by the
    processes torchrun started here."""
    if device.type == "cuda":
        return float(torch.cuda.get_device_properties(device).total_memory)
    here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024 / here
    except OSError:
        pass
    return None


def check_fits(plan: MemoryPlan) -> None:
    if plan.capacity is None or plan.total <= plan.capacity * MARGIN:
        return
    raise MemoryPlanError(
        f"this run needs about {plan.total / GB:.1f} GB per rank but {plan.device} offers "
        f"{plan.capacity / GB:.1f} GB ({plan.describe()}). Lower --micro-batch-size or --max-length, add "
        "--gradient-checkpointing, train LoRA adapters with --lora-rank, or shard with --shard fsdp over more "
        "processes; "
        "--no-memory-check runs it anyway"
    )


def measured_peak(device: torch.device) -> float:
    """Peak bytes this process used: the CUDA allocator's peak on a GPU, the resident set's peak on the CPU."""
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # KiB on Linux
