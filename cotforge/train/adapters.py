"""LoRA and QLoRA students through peft: the base stays frozen, small low-rank adapters train.

`--lora-rank r` wraps the student with peft's LoRA on every linear layer of its blocks ("all-linear", which peft
resolves for each architecture and which leaves the output layer alone), or on the modules `--lora-targets` names.
`--load-in-4bit` loads the frozen base in 4-bit NF4 through bitsandbytes (QLoRA, CUDA only). The adapter is what the
run saves (peft's folder, which `transformers` and `cotforge eval` load over the base); `--merge-lora` also writes
the base with the adapter folded in, to `merged/`, loaded afresh in full precision so a 4-bit base merges cleanly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cotforge.corpus import StudentDir
from cotforge.train.config import TrainConfig
from cotforge.train.student import StudentError, load_causal_lm


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise StudentError("--lora-rank needs peft: pip install 'cotforge[lora]'") from None
    return peft


def check_adapter_settings(config: TrainConfig, device: torch.device) -> None:
    """Refuse, before anything loads, the adapter settings this machine cannot run."""
    if config.adapter.lora_rank is None:
        return
    _peft()
    if not config.adapter.load_in_4bit:
        return
    if device.type != "cuda":
        raise StudentError("--load-in-4bit needs a CUDA GPU (bitsandbytes' 4-bit kernels); drop it to train LoRA")
    if config.distributed.shard == "fsdp":
        raise StudentError("--load-in-4bit does not shard: drop --shard fsdp (a 4-bit base is small enough for DDP)")
    if config.student.gguf_file:
        raise StudentError("--load-in-4bit loads a Hub or folder model, not --gguf-file")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise StudentError("--load-in-4bit needs bitsandbytes: pip install 'cotforge[qlora]'") from None


def quantization(config: TrainConfig, compute_dtype: torch.dtype) -> Any:
    """The 4-bit NF4 settings of the QLoRA paper (double quantization, compute in `compute_dtype`), or None."""
    if not config.adapter.load_in_4bit:
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def add_adapters(model: Any, config: TrainConfig) -> Any:
    """The peft model around `model` (whose LoRA layers are put in place: `model` itself now trains only them)."""
    peft = _peft()
    if config.adapter.load_in_4bit:
        model = peft.prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.execution.gradient_checkpointing
        )
    elif config.execution.gradient_checkpointing:
        model.enable_input_require_grads()  # the frozen embedding's output must carry a gradient into each block
    targets: list[str] | str = config.adapter.lora_targets or "all-linear"
    settings = peft.LoraConfig(
        r=config.adapter.lora_rank,
        lora_alpha=config.adapter.lora_alpha or 2 * config.adapter.lora_rank,
        lora_dropout=config.adapter.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    try:
        return peft.get_peft_model(model, settings)
    except ValueError as error:  # a target module the model does not have
        named = ",".join(targets) if isinstance(targets, list) else targets
        raise StudentError(f"--lora-targets {named}: {error}") from None


PEFT_ROOT = "base_model.model."  # how a peft model names the weights of the model it wraps


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint of an adapter run keeps: the trained parameters only, not the frozen base."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing = set(trainable_state(model)) - set(state)
    if missing:
        raise StudentError(f"the checkpoint lacks {len(missing)} trained parameters, e.g. {sorted(missing)[0]}")
    model.load_state_dict(state, strict=False)


def save_merged(config: TrainConfig, adapter_dir: Path, tokenizer: Any) -> Path:
    """The base, loaded again in fp32, with the saved adapter folded into its weights: a plain model folder, with
    its tokenizer, that anything loading transformers models reads."""
    peft = _peft()
    base = load_causal_lm(config.student.model, config.student.gguf_file, torch.float32)
    merged = peft.PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    folder = StudentDir(adapter_dir).merged.path
    merged.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
