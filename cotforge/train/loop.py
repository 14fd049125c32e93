"""The training loop: AdamW, cosine schedule, accumulation, clipping, bf16, DDP or FSDP2, checkpoints and resume.

Small enough to read in one sitting: `train` sets up (Runtime, _load_data, _load_student, Schedule), then fits one
optimizer step at a time (_optimizer_step); checkpoint.py saves, resumes and writes the student. Launch under
`torchrun --nproc-per-node N` for DDP (gloo on CPU, nccl on GPU), or with `shard="fsdp"` for FSDP2 (sharding.py);
several machines are torchrun's own `--nnodes`. The loss is the mean over completion tokens of the whole optimizer
step (all micro-batches, all ranks), computed only at completion positions, so no logits are made for prompt or
padding tokens.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from cotforge.corpus import StudentDir
from cotforge.train import adapters, sharding
from cotforge.train.batching import (
    Batch,
    collate_packed,
    collate_padded,
    describe_batching,
    padded_size,
    plan_batches,
    resolve_batching,
)
from cotforge.train.checkpoint import Checkpoints, save_student
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
from cotforge.train.scorer import run_quality_filter
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
    batching: str = ""  # the layout trained with: config's batching, auto resolved for the attention kernel
    attention: str = ""  # the student's attention kernel (transformers' attn_implementation)
    flops_per_token: float = 0.0  # flops.py's formula
    peak_flops: float | None = None  # per device; None where unknown
    mfu: float | None = None  # model FLOPs utilisation over the wall time, all ranks; None where the peak is unknown

    def add(self, entry: StepLog, tokens: int, completion_tokens: int, padding_tokens: int) -> None:
        self.history.append(entry)
        self.tokens += tokens
        self.completion_tokens += completion_tokens
        self.padding_tokens += padding_tokens

    def as_json(self, config: TrainConfig, template: str) -> dict[str, Any]:
        """train_report.json: the run's config and chat template, its figures, and its history last."""
        figures = {k: v for k, v in asdict(self).items() if k != "history"}
        return {
            "config": config.flat(),
            "template": template,
            **figures,
            "history": [vars(h) for h in self.history],
        }


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


@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its rank of `world` (torchrun's), its device, and the student's compute dtype."""

    world: int
    rank: int
    device: torch.device

    @classmethod
    def start(cls) -> Runtime:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu")
        if device.type == "cuda":  # before the process group, which binds this rank to its GPU
            torch.cuda.set_device(device)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group(**process_group(device))
        return cls(world, rank, device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def finish(self) -> None:
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()


@dataclass
class Student:
    """The model being trained and what wraps it: `peft_model` for LoRA, `loss_module` (sharded or DDP-wrapped)."""

    model: Any
    peft_model: Any | None
    loss_module: torch.nn.Module
    sharded: bool
    compute: torch.dtype
    memory_plan: dict[str, Any]


def _check_can_push(config: TrainConfig, run: Runtime) -> None:
    """A refused Hub token is found before training, not after."""
    if config.output.push_to_hub and run.main:
        from cotforge.hub import check_can_push

        check_can_push(config.output.push_to_hub)


def _load_data(config: TrainConfig, run: Runtime, log: Callable[[str], None]) -> tuple[TokenizedSet, Any, str]:
    """The data and the tokenizer first: a missing subset is reported in a second, not after loading the model."""
    corpus = config.data
    quality = run_quality_filter(config)
    pairs = training_pairs(
        corpus.dataset, corpus.subset, corpus.split, config.rendering.reasoning, corpus.mixture, corpus.seed, quality
    )
    note = empty_completions_note(pairs)
    if note and run.main:
        log(note)
    tokenizer = load_tokenizer(config.student.model, config.student.gguf_file)
    template = resolve_template(tokenizer, config.rendering.template)
    data = tokenize(
        pairs, tokenizer, template, config.rendering.max_length, StudentDir(config.output.output_dir).tokenized_dir
    )
    if not data.examples:
        raise TrainDataError(f"{config.data.dataset}: no training examples left after tokenization ({data.summary()})")
    if run.main:
        log(f"data: {data.summary()} (template {template}, max_length {config.rendering.max_length})")
    return data, tokenizer, template


def _load_student(config: TrainConfig, run: Runtime, log: Callable[[str], None]) -> Student:
    """The student on its device, with adapters, sharded or replicated, its memory plan checked."""
    world, device = run.world, run.device
    compute = compute_dtype(device)
    fsdp = config.distributed.shard == "fsdp" and world > 1
    # A LoRA base is frozen: its weights can sit in the compute dtype (or 4-bit), with no fp32 master copy.
    model = load_student(
        config.student.model,
        config.student.gguf_file,
        device,
        compute if config.adapter.lora_rank else torch.float32,
        adapters.quantization(config, compute),
        compute,
        place=not fsdp,  # fully_shard moves one block at a time: the whole model never sits on one GPU
    )
    if config.execution.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    peft_model = adapters.add_adapters(model, config) if config.adapter.lora_rank else None
    if config.distributed.shard == "fsdp" and world == 1:
        log("--shard fsdp with one process: nothing to shard, so it trains unsharded (torchrun --nproc-per-node N)")
    loss_module: torch.nn.Module = CompletionLoss(model)
    if fsdp:
        sharding.shard(loss_module, model, compute, config.distributed.cpu_offload)
    if config.execution.compile:
        compile_backbone(loss_module)
    if world > 1 and not fsdp:
        ids = [device.index] if device.type == "cuda" else None
        loss_module = torch.nn.parallel.DistributedDataParallel(loss_module, device_ids=ids)
    plan = plan_memory(
        model,
        micro_batch_size=config.optimisation.micro_batch_size,
        max_length=config.rendering.max_length,
        world_size=world,
        sharded=fsdp,
        gradient_checkpointing=config.execution.gradient_checkpointing,
        attention_weights_kept=getattr(model.config, "_attn_implementation", "") == "eager",
        activation_bytes=torch.finfo(compute).bits // 8,
        fused_optimizer=device.type == "cuda",
        device=device,
        cpu_offload=fsdp and config.distributed.cpu_offload,
    )
    if run.main:
        log(plan.describe())
    if config.execution.memory_check:
        check_fits(plan)
    return Student(model, peft_model, loss_module, fsdp, compute, plan.as_json())


@dataclass
class Schedule:
    """Which examples each optimizer step takes, on every rank alike, epoch after epoch."""

    config: TrainConfig
    data: TokenizedSet
    world: int
    layout: str  # config.data.batching, resolved (resolve_batching)

    def __post_init__(self) -> None:
        config = self.config
        self.lengths = [len(e.input_ids) for e in self.data.examples]
        self.completion = [sum(label != IGNORE for label in e.labels) for e in self.data.examples]
        self.micro_per_step = micro_batches_per_step(config.optimisation, self.world)
        batches_per_epoch = len(plan_batches(self.lengths, config, self.layout, 0))
        self.steps_per_epoch = max(1, batches_per_epoch // (self.micro_per_step * self.world))
        self.total_steps = config.optimisation.max_steps or max(
            1, math.ceil(config.optimisation.epochs * self.steps_per_epoch)
        )
        self.warmup = int(config.optimisation.warmup_ratio * self.total_steps)
        self._plans: dict[int, list[list[list[int]]]] = {}

    def micro_batches(self, step: int) -> list[list[list[int]]]:
        """Step `step`'s micro-batches, of every rank (rank r takes every world-th)."""
        epoch, in_epoch = divmod(step, self.steps_per_epoch)
        if epoch not in self._plans:
            self._plans = {epoch: plan_batches(self.lengths, self.config, self.layout, epoch)}
        first = in_epoch * self.micro_per_step * self.world
        return self._plans[epoch][first : first + self.micro_per_step * self.world]


def _optimizer_step(
    student: Student,
    schedule: Schedule,
    step_plan: list[list[list[int]]],
    run: Runtime,
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward over this rank's micro-batches; returns the step's summed loss and completion tokens,
    over every rank. The caller clips and steps the optimizer."""
    world, device, fsdp, loss_module = run.world, run.device, student.sharded, student.loss_module
    packed, completion = schedule.layout == "packed", schedule.completion
    mine = [collate(schedule.data, micro, packed, pad_id) for micro in step_plan[run.rank :: world]]
    # Normalise by the completion tokens of the whole optimizer step, on every rank alike.
    count = torch.tensor(float(sum(completion[j] for micro in step_plan for row in micro for j in row)), device=device)
    autocast = (  # FSDP gathers parameters in the compute dtype itself
        torch.autocast("cuda", dtype=student.compute)
        if device.type == "cuda" and student.compute != torch.float32 and not fsdp
        else nullcontext()
    )
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
    return loss_total, count


def _step_log(
    report: TrainReport,
    step: int,
    loss_total: torch.Tensor,
    count: torch.Tensor,
    learning_rate: float,
    step_plan: list[list[list[int]]],
    schedule: Schedule,
    started: float,
) -> StepLog:
    """The step's entry in the history, its tokens and padding added to the report."""
    elapsed = max(time.monotonic() - started, 1e-9)
    lengths, packed = schedule.lengths, schedule.layout == "packed"
    tokens = sum(lengths[j] for micro in step_plan for row in micro for j in row)
    padding = sum(padded_size(micro, lengths, packed) for micro in step_plan) - tokens
    entry = StepLog(
        step,
        float(loss_total / count.clamp(min=1)),
        learning_rate,
        tokens / elapsed,
        float(count) / elapsed,
        padding / max(1, tokens + padding),
    )
    report.add(entry, tokens, int(count), padding)
    return entry


def _peak_memory(report: TrainReport, run: Runtime) -> None:
    peaks = torch.tensor([measured_peak(run.device) / 2**20], dtype=torch.float64, device=run.device)
    if run.world > 1:
        gathered = [torch.zeros_like(peaks) for _ in range(run.world)]
        dist.all_gather(gathered, peaks)
        peaks = torch.cat(gathered)
    report.peak_memory_mb_per_rank = peaks.tolist()
    report.peak_memory_mb = max(report.peak_memory_mb_per_rank)


def _batching(config: TrainConfig, model: torch.nn.Module, run: Runtime, log: Callable[[str], None]) -> tuple[str, str]:
    """The layout this run trains with (`batching: auto` resolved for the student's attention kernel) and that
    kernel, logged once."""
    attention = model.config._attn_implementation
    layout = resolve_batching(config.data.batching, attention)
    if run.main:
        log(describe_batching(config.data.batching, layout, attention))
    return layout, attention


def train(config: TrainConfig, log: Callable[[str], None] = print) -> TrainReport:
    """Fine-tune `config.student.model` on the completions of `config.data.dataset`; returns what happened, step by
    step."""
    run = Runtime.start()
    adapters.check_adapter_settings(config, run.device)
    torch.manual_seed(config.data.seed)
    random.seed(config.data.seed)
    output = StudentDir(config.output.output_dir)
    _check_can_push(config, run)
    data, tokenizer, template = _load_data(config, run, log)
    student = _load_student(config, run, log)
    model = student.model
    trained = [p for p in model.parameters() if p.requires_grad]  # after fully_shard, which replaces them
    layout, attention = _batching(config, model, run, log)
    schedule = Schedule(config, data, run.world, layout)
    total_steps = schedule.total_steps
    work_per_token = flops_per_token(model, schedule.lengths)
    optimisation = config.optimisation
    optimizer = torch.optim.AdamW(
        trained, lr=optimisation.learning_rate, weight_decay=optimisation.weight_decay, fused=run.device.type == "cuda"
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_schedule(s, total_steps, schedule.warmup))
    checkpoints = Checkpoints(
        output,
        model,
        student.loss_module,
        optimizer,
        scheduler,
        lora=student.peft_model is not None,
        sharded=student.sharded,
        main=run.main,
        device=run.device,
    )
    step = 0
    report = TrainReport(0, len(data.examples), data.summary(), memory_plan=student.memory_plan)
    report.batching, report.attention = layout, attention
    resumed = checkpoints.resume(log) if config.output.resume else None
    if resumed is not None:
        step, history, folder = resumed
        report.history = [StepLog(**h) for h in history]
        if run.main:
            log(f"resumed from {folder} at step {step}")
    started = time.monotonic()
    model.train()
    while step < total_steps:
        step_plan = schedule.micro_batches(step)
        step_started = time.monotonic()
        loss_total, count = _optimizer_step(student, schedule, step_plan, run, tokenizer.pad_token_id)
        torch.nn.utils.clip_grad_norm_(trained, optimisation.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        synchronize(run.device)  # CUDA runs ahead of Python: time the work, not its queueing
        learning_rate = scheduler.get_last_lr()[0]
        entry = _step_log(report, step, loss_total, count, learning_rate, step_plan, schedule, step_started)
        if run.main and (step % config.execution.log_every == 0 or step == total_steps):
            log(
                f"step {step}/{total_steps} loss {entry.loss:.4f} lr {entry.learning_rate:.2e} "
                f"{entry.tokens_per_s:,.0f} tok/s padding {entry.padding_ratio:.1%}"
            )
        if config.output.save_every and step % config.output.save_every == 0:
            checkpoints.save(step, [vars(h) for h in report.history])
    report.steps = step
    synchronize(run.device)
    report.wall_time_s = time.monotonic() - started
    report.flops_per_token = work_per_token
    report.peak_flops = peak_flops(run.device, student.compute)
    report.mfu = utilisation(work_per_token, report.tokens, report.wall_time_s, report.peak_flops, run.world)
    _peak_memory(report, run)
    weights = checkpoints.final_weights()  # every rank takes part
    if run.main:
        saved = student.peft_model if student.peft_model is not None else model
        save_student(saved, tokenizer, config, report.as_json(config, template), output, weights)
        if config.output.push_to_hub:
            from cotforge.train.publish import push_student

            push_student(output, config.output.push_to_hub)
    run.finish()
    return report
