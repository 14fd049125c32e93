"""FSDP2 for students that do not fit replicated: PyTorch's `fully_shard` per transformer block, then the root, and
torch.distributed.checkpoint for sharded checkpoints. The trainer's DDP path stays the default for models that fit.

The root is the loss module (it calls the backbone and the output embedding directly, so the root's hooks must sit
on the module whose forward runs). Blocks are the model's own no-split modules (`_no_split_modules`: Llama's,
Gemma's, Qwen's decoder layers), so no architecture is named here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

SHARDS_DIR = "shards"


def blocks(model: Any) -> list[torch.nn.Module]:
    """The model's transformer blocks: the modules of the classes it says must not be split."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    found = [module for module in model.modules() if type(module).__name__ in names]
    if not found:
        raise ValueError(f"{type(model).__name__} names no transformer blocks (_no_split_modules): cannot shard it")
    return found


def shard(root: torch.nn.Module, model: Any, compute_dtype: torch.dtype, cpu_offload: bool) -> None:
    """Shard `root` (which holds `model`) in place: each block, then the root. Parameters are gathered in
    `compute_dtype` for compute and gradients are reduced in fp32, while the optimizer keeps fp32 shards."""
    mixed = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32)
    offload = CPUOffloadPolicy() if cpu_offload else OffloadPolicy()
    for block in blocks(model):
        fully_shard(block, mp_policy=mixed, offload_policy=offload)
    fully_shard(root, mp_policy=mixed, offload_policy=offload)


def save_checkpoint(folder: Path, root: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Every rank writes its own shards of the model and the optimizer (torch.distributed.checkpoint)."""
    model_state, optimizer_state = get_state_dict(root, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(folder / SHARDS_DIR))


def load_checkpoint(folder: Path, root: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    model_state, optimizer_state = get_state_dict(root, optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(state, checkpoint_id=str(folder / SHARDS_DIR))
    set_state_dict(root, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])


def full_state_dict(root: torch.nn.Module, prefix: str, renamed: str = "") -> dict[str, torch.Tensor]:
    """The whole model's weights gathered on the CPU (every rank takes part), `prefix` of each key made `renamed`."""
    state = get_model_state_dict(root, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {renamed + key.removeprefix(prefix): value for key, value in state.items()}
