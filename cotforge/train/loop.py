"""The training loop: AdamW, cosine schedule, accumulation, clipping, bf16, DDP or FSDP2, checkpoints and resume.

Small enough to read in one sitting. Launch under `torchrun --nproc-per-node N` for DDP (gloo on CPU, nccl on GPU),
or with `shard="fsdp"` for FSDP2 (sharding.py); several machines are torchrun's own `--nnodes`. The loss is the mean
over completion tokens of the whole optimizer step (all micro-batches, all ranks), computed only at completion
positions, so no logits are made for prompt or padding tokens.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from cotforge.train import adapters, sharding
from cotforge.train.batching import Batch, collate_packed, collate_padded, length_grouped, pack
from cotforge.train.checkpoint_files import CHECKPOINTS, checkpoint_folder, newest_state, save_state
from cotforge.train.config import TrainConfig, micro_batches_per_step
from cotforge.train.data import (
    IGNORE,
    TokenizedSet,
    TrainDataError,
    empty_completions_note,
    resolve_template,
    tokenize,
    training_pairs,
)
from cotforge.train.flops import flops_per_token, peak_flops, utilisation
from cotforge.train.loss import CompletionLoss, compile_backbone, loss_sum
from cotforge.train.memory import check_fits, measured_peak, plan_memory
from cotforge.train.student import compute_dtype, load_student, load_tokenizer


@dataclass
class StepLog:
    step: int
    loss: float
    learning_rate: float
    tokens_per_s: float
    completion_tokens_per_s: float
    padding_ratio: float


@dataclass
class TrainReport:
    steps: int
    examples: int
    truncation: dict[str, int]
    history: list[StepLog] = field(default_factory=list)
    wall_time_s: float = 0.0
    tokens: int = 0
    completion_tokens: int = 0
    padding_tokens: int = 0
    peak_memory_mb: float | None = None  # the highest over the ranks
    peak_memory_mb_per_rank: list[float] = field(default_factory=list)
    memory_plan: dict[str, Any] | None = None
    flops_per_token: float = 0.0  # flops.py's formula
    peak_flops: float | None = None  # per device; None where unknown
    mfu: float | None = None  # model FLOPs utilisation over the wall time, all ranks; None where the peak is unknown


def plan_batches(lengths: list[int], config: TrainConfig, epoch: int) -> list[list[list[int]]]:
    """The epoch's micro-batches as example indices: each micro-batch is rows, each row the examples it holds
    (one per row unless packed). Cheap to make; tensors are built per step, not for the whole epoch."""
    seed = config.seed * 1000 + epoch
    if config.batching == "packed":
        rows = pack(lengths, config.max_length, seed)
        return [rows[i : i + config.micro_batch_size] for i in range(0, len(rows), config.micro_batch_size)]
    if config.batching == "grouped":
        order = length_grouped(lengths, config.micro_batch_size, seed)
    else:
        indices = list(range(len(lengths)))
        random.Random(seed).shuffle(indices)
        order = [indices[i : i + config.micro_batch_size] for i in range(0, len(indices), config.micro_batch_size)]
    return [[[index] for index in batch] for batch in order]


def _padded_size(micro_batch: list[list[int]], lengths: list[int], packed: bool) -> int:
    """The tokens a micro-batch's tensors hold: all its examples in one row if packed, else rows as long as the
    longest."""
    if packed:
        return sum(lengths[j] for row in micro_batch for j in row)
    return max(sum(lengths[j] for j in row) for row in micro_batch) * len(micro_batch)


def collate(data: TokenizedSet, micro_batch: list[list[int]], packed: bool, pad_id: int) -> Batch:
    if packed:
        return collate_packed([[data.examples[j] for j in row] for row in micro_batch])
    return collate_padded([data.examples[row[0]] for row in micro_batch], pad_id)


def process_group(device: torch.device) -> dict[str, Any]:
    """init_process_group's arguments: gloo on the CPU; on a GPU, NCCL for CUDA tensors and gloo for CPU ones (FSDP's
    CPU offload clips gradients that live on the CPU), bound to this rank's GPU."""
    if device.type != "cuda":
        return {"backend": "gloo"}
    return {"backend": "cpu:gloo,cuda:nccl", "device_id": device}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cosine_schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(config: TrainConfig, log: Callable[[str], None] = print) -> TrainReport:
    """Fine-tune `config.model` on the completions of `config.dataset`; returns what happened, step by step."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":  # before the process group, which binds this rank to its GPU
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(**process_group(device))
    adapters.check_adapter_settings(config, device)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    output = Path(config.output_dir)

    if config.push_to_hub and rank == 0:  # a refused token is found before training, not after
        from cotforge.hub import check_can_push

        check_can_push(config.push_to_hub)
    # The data and the tokenizer first: a missing subset is reported in a second, not after loading the model.
    pairs = training_pairs(config.dataset, config.subset, config.split, config.reasoning, config.mixture, config.seed)
    note = empty_completions_note(pairs)
    if note and rank == 0:
        log(note)
    tokenizer = load_tokenizer(config.model, config.gguf_file)
    template = resolve_template(tokenizer, config.template)
    data = tokenize(pairs, tokenizer, template, config.max_length, output / "tokenized")
    if not data.examples:
        raise TrainDataError(f"{config.dataset}: no training examples left after tokenization ({data.summary()})")
    if rank == 0:
        log(f"data: {data.summary()} (template {template}, max_length {config.max_length})")
    compute = compute_dtype(device)
    fsdp = config.shard == "fsdp" and world > 1
    # A LoRA base is frozen: its weights can sit in the compute dtype (or 4-bit), with no fp32 master copy.
    model = load_student(
        config.model,
        config.gguf_file,
        device,
        compute if config.lora_rank else torch.float32,
        adapters.quantization(config, compute),
        compute,
        place=not fsdp,  # fully_shard moves one block at a time: the whole model never sits on one GPU
    )
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    peft_model = adapters.add_adapters(model, config) if config.lora_rank else None
    if config.shard == "fsdp" and world == 1:
        log("--shard fsdp with one process: nothing to shard, so it trains unsharded (torchrun --nproc-per-node N)")
    loss_module: torch.nn.Module = CompletionLoss(model)
    if fsdp:
        sharding.shard(loss_module, model, compute, config.cpu_offload)
    if config.compile:
        compile_backbone(loss_module)
    if world > 1 and not fsdp:
        ids = [device.index] if device.type == "cuda" else None
        loss_module = torch.nn.parallel.DistributedDataParallel(loss_module, device_ids=ids)
    plan = plan_memory(
        model,
        micro_batch_size=config.micro_batch_size,
        max_length=config.max_length,
        world_size=world,
        sharded=fsdp,
        gradient_checkpointing=config.gradient_checkpointing,
        attention_weights_kept=getattr(model.config, "_attn_implementation", "") == "eager",
        activation_bytes=torch.finfo(compute).bits // 8,
        fused_optimizer=device.type == "cuda",
        device=device,
        cpu_offload=fsdp and config.cpu_offload,
    )
    if rank == 0:
        log(plan.describe())
    if config.memory_check:
        check_fits(plan)

    trained = [p for p in model.parameters() if p.requires_grad]  # after fully_shard, which replaces them
    micro_per_step = micro_batches_per_step(config, world)
    lengths = [len(e.input_ids) for e in data.examples]
    work_per_token = flops_per_token(model, lengths)
    completion = [sum(label != IGNORE for label in e.labels) for e in data.examples]
    packed = config.batching == "packed"
    batches_per_epoch = len(plan_batches(lengths, config, 0))
    steps_per_epoch = max(1, batches_per_epoch // (micro_per_step * world))
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    warmup = int(config.warmup_ratio * total_steps)
    optimizer = torch.optim.AdamW(
        trained, lr=config.learning_rate, weight_decay=config.weight_decay, fused=device.type == "cuda"
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_schedule(s, total_steps, warmup))
    step = 0
    report = TrainReport(steps=0, examples=len(data.examples), truncation=data.summary(), memory_plan=plan.as_json())
    found = newest_state(output, log) if config.resume else None
    if found is not None:
        last, state = found
        if fsdp:
            sharding.load_checkpoint(last, loss_module, optimizer)
        elif peft_model is not None:
            adapters.load_trainable_state(model, state["model"])
            optimizer.load_state_dict(state["optimizer"])
        else:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state and device.type == "cuda":  # dropout on the GPU draws from its own generator
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        step = state["step"]
        report.history = [StepLog(**h) for h in state["history"]]
        if rank == 0:
            log(f"resumed from {last} at step {step}")

    autocast = (  # FSDP gathers parameters in the compute dtype itself
        torch.autocast("cuda", dtype=compute)
        if device.type == "cuda" and compute != torch.float32 and not fsdp
        else nullcontext()
    )
    started = time.monotonic()
    model.train()
    plans: dict[int, list[list[list[int]]]] = {}
    while step < total_steps:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        if epoch not in plans:
            plans = {epoch: plan_batches(lengths, config, epoch)}
        first = in_epoch * micro_per_step * world
        step_plan = plans[epoch][first : first + micro_per_step * world]
        mine = [collate(data, micro, packed, tokenizer.pad_token_id) for micro in step_plan[rank::world]]
        # Normalise by the completion tokens of the whole optimizer step, on every rank alike.
        count = torch.tensor(
            float(sum(completion[j] for micro in step_plan for row in micro for j in row)), device=device
        )
        step_started = time.monotonic()
        loss_total = torch.zeros((), device=device)
        for index, batch in enumerate(mine):
            last = index == len(mine) - 1
            # Gradients are exchanged once per optimizer step, on the last micro-batch.
            if fsdp:
                loss_module.set_requires_gradient_sync(last)  # type: ignore[operator]
            context = loss_module.no_sync() if world > 1 and not fsdp and not last else nullcontext()
            with context, autocast:
                loss = loss_sum(loss_module, batch.to(device))
                # DDP averages gradients over ranks: scale so that the average is the step's mean.
                (loss * world / count.clamp(min=1)).backward()
            loss_total += loss.detach()
        if world > 1:
            dist.all_reduce(loss_total)
        torch.nn.utils.clip_grad_norm_(trained, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        synchronize(device)  # CUDA runs ahead of Python: time the work, not its queueing
        elapsed = max(time.monotonic() - step_started, 1e-9)
        tokens = sum(lengths[j] for micro in step_plan for row in micro for j in row)
        padding = sum(_padded_size(micro, lengths, packed) for micro in step_plan) - tokens
        entry = StepLog(
            step,
            float(loss_total / count.clamp(min=1)),
            scheduler.get_last_lr()[0],
            tokens / elapsed,
            float(count) / elapsed,
            padding / max(1, tokens + padding),
        )
        report.history.append(entry)
        report.tokens += tokens
        report.completion_tokens += int(count)
        report.padding_tokens += padding
        if rank == 0 and (step % config.log_every == 0 or step == total_steps):
            log(
                f"step {step}/{total_steps} loss {entry.loss:.4f} lr {entry.learning_rate:.2e} "
                f"{entry.tokens_per_s:,.0f} tok/s padding {entry.padding_ratio:.1%}"
            )
        if config.save_every and step % config.save_every == 0:
            folder = checkpoint_folder(output, step)
            if fsdp:  # every rank writes its shards; the rest is the same on every rank
                sharding.save_checkpoint(folder, loss_module, optimizer)
            if rank == 0:
                kept = adapters.trainable_state(model) if peft_model is not None else model.state_dict()
                weights = {} if fsdp else {"model": kept, "optimizer": optimizer.state_dict()}
                save_state(
                    folder,
                    {
                        **weights,
                        "scheduler": scheduler.state_dict(),
                        "rng": torch.get_rng_state(),
                        **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                        "step": step,
                        "history": [vars(h) for h in report.history],
                    },
                )
    report.steps = step
    synchronize(device)
    report.wall_time_s = time.monotonic() - started
    report.flops_per_token = work_per_token
    report.peak_flops = peak_flops(device, compute)
    report.mfu = utilisation(work_per_token, report.tokens, report.wall_time_s, report.peak_flops, world)
    peaks = torch.tensor([measured_peak(device) / 2**20], dtype=torch.float64, device=device)
    if world > 1:
        gathered = [torch.zeros_like(peaks) for _ in range(world)]
        dist.all_gather(gathered, peaks)
        peaks = torch.cat(gathered)
    report.peak_memory_mb_per_rank = peaks.tolist()
    report.peak_memory_mb = max(report.peak_memory_mb_per_rank)
    weights = None
    if fsdp:  # every rank takes part
        weights = sharding.full_state_dict(loss_module, "model.", adapters.PEFT_ROOT if peft_model else "")
    if rank == 0:
        save(peft_model if peft_model is not None else model, tokenizer, config, report, template, output, weights)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return report


def save(
    model: Any,
    tokenizer: Any,
    config: TrainConfig,
    report: TrainReport,
    template: str,
    output: Path,
    weights: dict[str, torch.Tensor] | None = None,
) -> None:
    """The student, its tokenizer and the run's report; `weights`: the gathered state of a sharded model."""
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, state_dict=weights)  # a peft model saves its adapter only
    tokenizer.save_pretrained(output)
    folders = [output]
    if config.merge_lora:  # the merged student carries the report too: `eval` reads its template there
        folders.append(adapters.save_merged(config, output, tokenizer))
    body = {
        "config": config.model_dump(),
        "template": template,
        "steps": report.steps,
        "examples": report.examples,
        "truncation": report.truncation,
        "wall_time_s": report.wall_time_s,
        "tokens": report.tokens,
        "completion_tokens": report.completion_tokens,
        "padding_tokens": report.padding_tokens,
        "peak_memory_mb": report.peak_memory_mb,
        "peak_memory_mb_per_rank": report.peak_memory_mb_per_rank,
        "memory_plan": report.memory_plan,
        "flops_per_token": report.flops_per_token,
        "peak_flops": report.peak_flops,
        "mfu": report.mfu,
        "history": [vars(h) for h in report.history],
    }
    for folder in folders:
        (folder / "train_report.json").write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    _loss_curve(report, output / "loss_curve.png")
    if config.push_to_hub:
        _push_model(output, config, report)


def _loss_curve(report: TrainReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.plot([h.step for h in report.history], [h.loss for h in report.history])
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (completion tokens)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _push_model(output: Path, config: TrainConfig, report: TrainReport) -> None:
    from huggingface_hub import HfApi, ModelCard

    card = ModelCard(f"""---
library_name: {"peft" if config.lora_rank else "transformers"}
base_model: {config.model}
datasets:
- {config.dataset}
tags:
- cotforge
- chain-of-thought
- distillation
---

# {config.push_to_hub.rsplit("/", 1)[-1]}

{config.model} fine-tuned with cotforge on the chain-of-thought corpus `{config.dataset}`
(subset `{config.subsets_trained}`): {report.steps} optimizer steps over {report.examples} examples, loss on the
completion only, final loss {report.history[-1].loss:.4f}. Settings are in `train_report.json`.
""")
    card.save(output / "README.md")
    api = HfApi()
    try:
        api.create_repo(config.push_to_hub, exist_ok=True)
        api.upload_folder(
            repo_id=config.push_to_hub, folder_path=output, ignore_patterns=[f"{CHECKPOINTS}/*", "tokenized/*"]
        )
    except Exception as error:
        from cotforge.hub import explain_hub_error

        raise explain_hub_error(error, config.push_to_hub, f"push the student (saved in {output}) to") from None
