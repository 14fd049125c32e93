from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cotforge.train import TrainConfig
from cotforge.train.batching import collate_packed, collate_padded, length_grouped, pack, resolve_batching
from cotforge.train.data import IGNORE, load_pairs, tokenize
from cotforge.train.loop import train
from cotforge.train.loss import CompletionLoss, loss_sum

pytestmark = pytest.mark.integration


def config(student: Path, paper_build: Path, out: Path, **changes) -> TrainConfig:
    settings = dict(
        model=str(student),
        dataset=str(paper_build),
        subset="gpt-4o-g2-cot",
        output_dir=str(out),
        max_length=256,
        micro_batch_size=4,
        global_batch_size=8,
        learning_rate=3e-3,
        warmup_ratio=0.0,
        max_steps=30,
        seed=7,
    )
    return TrainConfig(**{**settings, **changes})


def train_command(student: Path, paper_build: Path, out: Path, *options: str) -> list[str]:
    """`-m cotforge train` on the corpus's level-2 GPT-4o subset, with the given options."""
    return [
        "-m",
        "cotforge",
        "train",
        "--dataset",
        str(paper_build),
        "--subset",
        "gpt-4o-g2-cot",
        "--model",
        str(student),
        "--out",
        str(out),
        *options,
    ]


def quiet(_: str) -> None:
    pass


def test_a_few_dozen_steps_reduce_the_loss(tmp_path: Path, student: Path, paper_build: Path) -> None:
    lines: list[str] = []
    report = train(config(student, paper_build, tmp_path / "out"), log=lines.append)
    losses = [h.loss for h in report.history]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 1.0
    saved = json.loads((tmp_path / "out" / "train_report.json").read_text())
    assert saved["steps"] == 30 and saved["template"] == "chat" and saved["truncation"]["examples"] == 700
    assert (tmp_path / "out" / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "config.json").exists() and (tmp_path / "out" / "tokenizer.json").exists()
    assert all(0 <= h.padding_ratio < 1 and h.tokens_per_s > 0 for h in report.history)
    # The memory plan before the first step, and the measured peak beside it.
    plan = saved["memory_plan"]
    assert plan["device"] == "cpu" and plan["total"] > plan["weights"] > 0 and plan["capacity"] > 0
    assert plan["gradients"] == plan["weights"], "all trained, fp32"
    assert plan["optimizer"] == 3 * plan["weights"], "AdamW's moments and its unfused temporary on the CPU"
    assert saved["peak_memory_mb"] * 2**20 > plan["weights"]
    # FLOPs per token (flops.py) for the model's work; no MFU on the CPU, whose peak is not known.
    assert saved["flops_per_token"] > 6 * plan["weights"] / 4 and saved["mfu"] is None and saved["peak_flops"] is None
    # The default layout, auto, resolved for the CPU's kernel (SDPA attends a packed row whole): length-grouped
    # rows, said in the log and recorded beside the setting as asked.
    assert saved["config"]["batching"] == "auto" and (saved["batching"], saved["attention"]) == ("grouped", "sdpa")
    assert "batching: grouped (auto: sdpa would attend a packed row whole)" in lines
    assert 0 < saved["padding_tokens"] < 0.1 * saved["tokens"]


def test_an_explicit_layout_is_honoured(tmp_path: Path, student: Path, paper_build: Path) -> None:
    """Packed where auto would group: one row per micro-batch (no padding at all), and the log says what it costs."""
    lines: list[str] = []
    report = train(config(student, paper_build, tmp_path / "out", batching="packed", max_steps=2), log=lines.append)
    saved = json.loads((tmp_path / "out" / "train_report.json").read_text())
    assert saved["config"]["batching"] == saved["batching"] == "packed"
    assert saved["padding_tokens"] == 0 and all(h.padding_ratio == 0 for h in report.history)
    assert "batching: packed (as asked; sdpa attends the packed row whole: grouped is faster here)" in lines


def test_auto_packs_one_row_only_where_the_kernel_attends_per_example() -> None:
    """flash-attention (varlen lengths) and flex attention (a block mask that skips the blocks between examples)
    attend each packed example on its own; SDPA and eager attend the whole row, at the row's length squared."""
    for attention in ("flash_attention_2", "flash_attention_3", "kernels-community/flash-attn3", "flex_attention"):
        assert resolve_batching("auto", attention) == "packed", attention
    assert resolve_batching("auto", "sdpa") == resolve_batching("auto", "eager") == "grouped"
    for batching in ("packed", "grouped", "plain"):
        assert resolve_batching(batching, "sdpa") == resolve_batching(batching, "flash_attention_2") == batching


def test_lora_trains_the_adapter_only_and_resumes(tmp_path: Path, student: Path, paper_build: Path) -> None:
    """LoRA lowers the loss; the saved adapter holds LoRA weights only; the merged model differs from the base
    in the adapted layers and nowhere else; the adapter folder loads with transformers; a checkpoint resumes to the
    same losses."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    lora = {"lora_rank": 16, "learning_rate": 5e-3, "max_steps": 12}
    out = tmp_path / "lora"
    report = train(config(student, paper_build, out, save_every=6, merge_lora=True, **lora), log=quiet)
    losses = [h.loss for h in report.history]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1  # batch-to-batch noise here is about 0.02
    plan = json.loads((out / "train_report.json").read_text())["memory_plan"]
    assert plan["gradients"] < 0.2 * plan["weights"], "gradients and AdamW state for the adapter only"

    adapter = load_file(out / "adapter_model.safetensors")
    assert adapter and all("lora_A" in key or "lora_B" in key for key in adapter)
    assert not (out / "model.safetensors").exists()
    base = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32).state_dict()
    merged = AutoModelForCausalLM.from_pretrained(out / "merged", dtype=torch.float32).state_dict()
    assert json.loads((out / "merged" / "train_report.json").read_text())["template"] == "chat", "eval reads it"
    changed = {name for name, value in merged.items() if not torch.equal(value, base[name])}
    linear = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert changed and all(name.split(".")[-2] in linear for name in changed), sorted(changed)[:5]
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).state_dict()  # base + adapter, by peft
    assert any("lora_A" in name for name in loaded)

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(out / "checkpoints" / "step-6", resumed_dir / "checkpoints" / "step-6")
    resumed = train(config(student, paper_build, resumed_dir, resume=True, **lora), log=quiet)
    for a, b in zip(report.history[6:], resumed.history[6:], strict=True):
        assert abs(a.loss - b.loss) < 1e-5, (a, b)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--lora-rank", "8", "--load-in-4bit"], "--load-in-4bit needs a CUDA GPU"),
        (["--load-in-4bit"], "only to LoRA"),
        (["--lora-rank", "8", "--lora-targets", "nope_proj"], "--lora-targets nope_proj"),
        (["--template", "bogus"], "unknown template 'bogus'"),
    ],
)
def test_adapter_settings_this_machine_cannot_run_exit_2(
    tmp_path: Path, student: Path, paper_build: Path, options: list[str], said: str
) -> None:
    from typer.testing import CliRunner

    from cotforge.cli import app

    command = train_command(student, paper_build, tmp_path / "out", "--max-steps", "1", *options)[2:]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out" / "train_report.json").exists()


def test_memory_plan_refuses_what_cannot_fit(tmp_path: Path, student: Path, paper_build: Path) -> None:
    """Exit 2 with the knobs named, before any step, for a setting no machine here holds; and the plan's parts
    move with sharding, checkpointing and the attention path."""
    from cotforge.train.memory import plan_memory

    command = train_command(student, paper_build, tmp_path / "out", "--micro-batch-size", "4096", "--global-batch-size",
                            "4096", "--max-length", "65536", "--max-steps", "1")  # fmt: skip
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    for knob in ("--micro-batch-size", "--max-length", "--gradient-checkpointing", "--lora-rank", "--shard fsdp"):
        assert knob in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out" / "train_report.json").exists()

    class Config:
        hidden_size, num_hidden_layers, num_attention_heads, vocab_size = 64, 2, 4, 1000

    model = torch.nn.Linear(10, 10)
    model.config = Config()
    options = dict(
        micro_batch_size=2,
        max_length=128,
        world_size=4,
        activation_bytes=4,
        fused_optimizer=True,
        device=torch.device("cpu"),
    )
    whole = plan_memory(model, sharded=False, gradient_checkpointing=False, attention_weights_kept=False, **options)
    sharded = plan_memory(model, sharded=True, gradient_checkpointing=False, attention_weights_kept=False, **options)
    assert sharded.optimizer == whole.optimizer / 4 and sharded.weights == whole.weights / 4
    checkpointed = plan_memory(
        model, sharded=False, gradient_checkpointing=True, attention_weights_kept=False, **options
    )
    eager = plan_memory(model, sharded=False, gradient_checkpointing=False, attention_weights_kept=True, **options)
    assert checkpointed.activations < whole.activations < eager.activations


def test_memory_plan_counts_cpu_offload() -> None:
    """With FSDP's CPU offload the fp32 shards, gradients and AdamW's state are in host memory: the device plan
    keeps only what is gathered at a time, so a run that fits offloaded is no longer refused."""
    import dataclasses

    from transformers import LlamaConfig, LlamaForCausalLM

    from cotforge.train.memory import MARGIN, MemoryPlanError, check_fits, plan_memory

    shape = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=16, num_attention_heads=4)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=300, num_key_value_heads=2, **shape))
    options = dict(
        micro_batch_size=1,
        max_length=16,
        world_size=4,
        sharded=True,
        gradient_checkpointing=False,
        attention_weights_kept=False,
        activation_bytes=2,
        fused_optimizer=True,
        device=torch.device("cpu"),
    )
    sharded = plan_memory(model, **options)
    offloaded = plan_memory(model, cpu_offload=True, **options)
    assert sharded.host == 0 and offloaded.optimizer == 0
    assert offloaded.host == sharded.weights + sharded.gradients + sharded.optimizer
    block = sum(p.numel() for p in model.model.layers[0].parameters())
    root = sum(p.numel() for p in model.parameters()) - 16 * block
    assert offloaded.weights == (root + 2 * block) * 2 and offloaded.gradients == (root + block) * 4
    assert offloaded.total < sharded.total and "offloaded to the CPU" in offloaded.describe()
    capacity = (offloaded.total + sharded.total) / 2 / MARGIN
    check_fits(dataclasses.replace(offloaded, capacity=capacity))
    with pytest.raises(MemoryPlanError):
        check_fits(dataclasses.replace(sharded, capacity=capacity))


def test_flash_attention_only_with_half_precision_compute(monkeypatch) -> None:
    """FA2 where flash_attn imports and the GPU computes in bf16; a GPU without bf16 trains in fp32, so SDPA."""
    import types

    from cotforge.train.student import attention_for

    cuda = torch.device("cuda", 0)
    monkeypatch.setitem(sys.modules, "flash_attn", types.ModuleType("flash_attn"))
    assert attention_for(cuda, torch.bfloat16) == "flash_attention_2"
    assert attention_for(cuda, torch.float32) == "sdpa"
    assert attention_for(torch.device("cpu"), torch.bfloat16) == "sdpa"
    monkeypatch.setitem(sys.modules, "flash_attn", None)  # not installed: the import fails
    assert attention_for(cuda, torch.bfloat16) == "sdpa"


def test_process_group_on_a_gpu_reaches_cpu_tensors_too() -> None:
    """FSDP's CPU offload clips gradients on the CPU: the group needs gloo beside NCCL, bound to the rank's GPU."""
    from cotforge.train.loop import process_group

    assert process_group(torch.device("cuda", 3)) == {
        "backend": "cpu:gloo,cuda:nccl",
        "device_id": torch.device("cuda", 3),
    }
    assert process_group(torch.device("cpu")) == {"backend": "gloo"}


def test_flops_per_token_matches_torchs_flop_counter() -> None:
    """flops.py's formula against torch's own count of one training step (forward and backward, full logits) of a
    Llama over one packed row of three examples: the matmuls as torch counts them (its CPU SDPA kernel counts none),
    and attention's cost per pair of tokens from eager attention, which computes every pair of the row."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import LlamaConfig, LlamaForCausalLM

    from cotforge.train.flops import flops_per_token, peak_flops, utilisation

    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=1000, num_key_value_heads=2, tie_word_embeddings=False, **shape))
    lengths = [40, 24, 64]
    tokens = sum(lengths)
    ids = torch.randint(0, 1000, (1, tokens))
    positions = torch.cat([torch.arange(n) for n in lengths])[None]

    def counted(attention: str) -> int:
        model.set_attn_implementation(attention)
        with FlopCounterMode(display=False) as counter:
            model(input_ids=ids, position_ids=positions, labels=ids).loss.backward()
        return counter.get_total_flops()

    matmuls = counted("sdpa")
    per_pair = (counted("eager") - matmuls) / tokens**2  # forward and backward, all layers
    assert per_pair == 12 * 2 * 64
    expected = matmuls + per_pair * sum(n * n for n in lengths) / 2  # causal, within each example
    ours = flops_per_token(model, lengths) * tokens
    assert abs(ours - expected) / expected < 0.005, (ours, expected)  # the norms' weights count as matmuls here
    assert peak_flops(torch.device("cpu"), torch.bfloat16) is None
    assert utilisation(1e9, 1000, 1.0, None, 1) is None and utilisation(1e9, 1000, 1.0, 1e13, 2) == 0.05


def _examples(student: Path, paper_build: Path, n: int = 6):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(student)
    pairs = load_pairs(str(paper_build), "gpt-4o-g6-cot")[:n]
    return tokenizer, tokenize(pairs, tokenizer, "chat", 512).examples


def test_packed_and_padded_batches_give_the_same_loss(student: Path, paper_build: Path) -> None:
    from transformers import AutoModelForCausalLM

    tokenizer, examples = _examples(student, paper_build)
    model = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32).eval()
    loss = CompletionLoss(model)
    padded = collate_padded(examples, tokenizer.pad_token_id)
    packed = collate_packed([examples[:3], examples[3:]])
    assert packed.completion_tokens == padded.completion_tokens
    assert packed.input_ids.shape[0] == 1 and packed.padding == 0 < padded.padding
    with torch.no_grad():
        a = loss_sum(loss, padded) / padded.completion_tokens
        b = loss_sum(loss, packed) / packed.completion_tokens
    assert abs(float(a) - float(b)) < 1e-4


def _flash_attention_as_transformers_drives_it(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, position_ids=None, **kwargs
):
    """Flash-attention's decisions without its CUDA kernels: transformers' own `_is_packed_sequence` and
    varlen lengths from the position ids, else plain causal attention over the whole row (FA2 takes no mask
    without padding)."""
    import torch.nn.functional as F
    from transformers.modeling_flash_attention_utils import (
        _is_packed_sequence,
        prepare_fa_kwargs_from_position_ids,
    )

    assert attention_mask is None
    spans = [(0, query.shape[2])]
    if _is_packed_sequence(position_ids, query.shape[0]):
        (starts, _), _ = prepare_fa_kwargs_from_position_ids(position_ids)
        spans = list(zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True))
    parts = [
        F.scaled_dot_product_attention(
            query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True, scale=scaling, enable_gqa=True
        )
        for a, b in spans
    ]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


@pytest.mark.parametrize("attention", ["sdpa", "eager", "flash_attention_2 as transformers drives it"])
def test_packed_examples_never_attend_to_each_other(student: Path, paper_build: Path, attention: str) -> None:
    """Each example's hidden states in a packed micro-batch equal those of the example alone, on every attention
    path: FA2 sees the examples only when the micro-batch is one row (its varlen path needs batch size 1)."""
    from transformers import AttentionInterface, AutoModelForCausalLM

    if attention.startswith("flash"):
        attention = "cotforge_varlen_reference"  # a name with "flash" in it sends transformers to its kernels
        AttentionInterface.register(attention, _flash_attention_as_transformers_drives_it)
    _, examples = _examples(student, paper_build, 5)
    model = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32, attn_implementation=attention).eval()
    packed = collate_packed([examples[:2], examples[2:]])
    with torch.no_grad():
        hidden = model.model(input_ids=packed.input_ids, position_ids=packed.position_ids, use_cache=False)
        at = 0
        for example in examples:
            n = len(example.input_ids)
            alone = model.model(input_ids=torch.tensor([example.input_ids]), use_cache=False).last_hidden_state
            assert torch.allclose(hidden.last_hidden_state[0, at : at + n], alone[0], atol=1e-4), (attention, at)
            at += n


def test_prompt_tokens_carry_no_loss_or_gradient(student: Path, paper_build: Path) -> None:
    """Our completion-only loss equals the reference (full logits, -100 labels) in value and in gradient."""
    from transformers import AutoModelForCausalLM

    tokenizer, examples = _examples(student, paper_build, 3)
    model = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32)
    batch = collate_padded(examples, tokenizer.pad_token_id)
    ours = loss_sum(CompletionLoss(model), batch) / batch.completion_tokens
    ours.backward()
    ours_grad = model.model.embed_tokens.weight.grad.clone()
    model.zero_grad()
    reference = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
    reference.backward()
    assert abs(ours.item() - reference.item()) < 1e-5
    assert torch.allclose(ours_grad, model.model.embed_tokens.weight.grad, atol=1e-7)
    # An example with no completion token adds nothing.
    only_prompt = examples[0].__class__(examples[0].input_ids, [IGNORE] * len(examples[0].input_ids))
    with torch.no_grad():
        assert loss_sum(CompletionLoss(model), collate_padded([only_prompt], tokenizer.pad_token_id)).item() == 0.0


@pytest.mark.parametrize(("softcap", "bias"), [(None, False), (30.0, True)])
def test_chunked_linear_cross_entropy_equals_the_plain_one(monkeypatch, softcap, bias) -> None:
    """Over several chunks, with a bias and Gemma 2's soft cap: the same sum and gradients as cross_entropy over
    the whole logits (float64, so any slip in the arithmetic shows)."""
    import torch.nn.functional as F

    from cotforge.train import loss as loss_module

    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", 777 * 64)  # 64 rows per chunk: 9 chunks, the last short
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(555, 32, dtype=torch.float64, generator=generator).requires_grad_()
    weight = torch.randn(777, 32, dtype=torch.float64, generator=generator).requires_grad_()
    offset = torch.randn(777, dtype=torch.float64, generator=generator).requires_grad_() if bias else None
    targets = torch.randint(0, 777, (555,), generator=generator)
    inputs = [hidden, weight] + ([offset] if bias else [])

    ours = loss_module.linear_cross_entropy(hidden, weight, targets, offset, softcap)
    ours_grads = torch.autograd.grad(ours * 3, inputs)
    logits = hidden @ weight.T + (offset if bias else 0)
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    reference = F.cross_entropy(logits, targets, reduction="sum")
    reference_grads = torch.autograd.grad(reference * 3, inputs)
    assert abs(ours.item() - reference.item()) < 1e-9
    for a, b in zip(ours_grads, reference_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("head_dtype", [torch.float32, torch.bfloat16])
def test_chunked_loss_keeps_fp32_logits_under_autocast_and_casts_the_head_once(monkeypatch, head_dtype) -> None:
    """Under bf16 autocast (the trainer's CUDA path, here on the CPU) every chunk's logits are an fp32 product, and
    the output layer is cast at most once, not once per chunk: an fp32 master head never, a bf16 base's once."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from cotforge.train import loss as loss_module

    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", 777 * 64)  # 9 chunks
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(555, 32, generator=generator).requires_grad_()
    weight = (torch.randn(777, 32, generator=generator) * 2).to(head_dtype).requires_grad_()
    targets = torch.randint(0, 777, (555,), generator=generator)
    logits_dtypes: list[torch.dtype] = []
    head_casts = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is torch.ops.aten.mm.default and out.shape[-1] == 777:
                logits_dtypes.append(out.dtype)
            if func is torch.ops.aten._to_copy.default and args[0].shape == weight.shape:
                head_casts.append(out.dtype)
            return out

    with torch.autocast("cpu", dtype=torch.bfloat16), Record():
        ours = loss_module.linear_cross_entropy(hidden, weight, targets)  # its gradients made here too
    assert logits_dtypes == [torch.float32] * 9
    assert len(head_casts) == (0 if head_dtype == torch.float32 else 1), head_casts
    reference = torch.nn.functional.cross_entropy(hidden.double() @ weight.double().T, targets, reduction="sum")
    assert abs(ours.item() - reference.item()) < 1e-5 * abs(reference.item())


def test_compile_traces_once_over_steps_of_changing_lengths() -> None:
    """--compile over eight steps whose packed rows and completion counts all differ: no graph break and one graph
    (torch.compile of the whole loss broke at the completion selection and recompiled every step, until dynamo
    fell back to eager). The frontend decides this; the eager backend keeps it quick."""
    from torch._dynamo.utils import counters
    from transformers import LlamaConfig, LlamaForCausalLM

    from cotforge.train.data import Example
    from cotforge.train.loss import compile_backbone

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    shape = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    loss = CompletionLoss(LlamaForCausalLM(LlamaConfig(vocab_size=300, num_key_value_heads=2, **shape)))
    compile_backbone(loss, backend="eager")
    generator = torch.Generator().manual_seed(1)
    for _ in range(8):
        examples = []
        for _ in range(3):
            ids = torch.randint(0, 300, (int(torch.randint(10, 40, (1,), generator=generator)),), generator=generator)
            examples.append(Example(ids.tolist(), [IGNORE] * (len(ids) // 2) + ids[len(ids) // 2 :].tolist()))
        loss_sum(loss, collate_packed([examples[:2], examples[2:]])).backward()
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 1 and counters["frames"]["total"] == 1
    torch._dynamo.reset()


def test_resume_continues_the_same_loss_curve(tmp_path: Path, student: Path, paper_build: Path, monkeypatch) -> None:
    """The same losses after a resume; the checkpoint is read onto the CPU (under DDP every rank would otherwise put
    rank 0's tensors on GPU 0)."""
    loads: list[tuple[str, object]] = []
    real_load = torch.load

    def load(path, *args, **kwargs):
        loads.append((Path(path).name, kwargs.get("map_location")))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    full = train(config(student, paper_build, tmp_path / "full", max_steps=8, save_every=4), log=quiet)
    resumed_dir = tmp_path / "resumed"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step-4", resumed_dir / "checkpoints" / "step-4")
    resumed = train(config(student, paper_build, resumed_dir, max_steps=8, save_every=4, resume=True), log=quiet)
    assert [h.step for h in resumed.history] == list(range(1, 9))
    for a, b in zip(full.history[4:], resumed.history[4:], strict=True):
        assert abs(a.loss - b.loss) < 1e-5, (a, b)
    assert ("state.pt", "cpu") in loads


def test_truncation_is_counted(tmp_path: Path, student: Path, paper_build: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(student)
    pairs = load_pairs(str(paper_build), "gpt-4o-g6-cot")[:20]
    full = tokenize(pairs, tokenizer, "chat", 4096)
    cut = tokenize(pairs, tokenizer, "chat", 100, cache_dir=tmp_path)
    assert cut.truncated > 0 and cut.completion_tokens_cut > 0 and cut.dropped == 0
    assert cut.completion_tokens + cut.completion_tokens_cut == full.completion_tokens  # nothing lost unseen
    dropped = tokenize(pairs, tokenizer, "chat", 30)  # shorter than the prompts: every example is dropped
    assert dropped.dropped == 20 and dropped.examples == []
    assert all(len(e.input_ids) <= 100 for e in cut.examples)
    again = tokenize(pairs, tokenizer, "chat", 100, cache_dir=tmp_path)  # from the cache
    assert len(list(tmp_path.glob("*.pt"))) == 1 and again.summary() == cut.summary()


def test_batching_helpers() -> None:
    lengths = [5, 50, 7, 48, 6, 49, 8, 47]
    batches = length_grouped(lengths, 2, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(abs(lengths[b[0]] - lengths[b[-1]]) <= 3 for b in batches)
    rows = pack(lengths, 60, seed=1)
    assert sorted(i for r in rows for i in r) == list(range(8))
    assert all(sum(lengths[i] for i in r) <= 60 for r in rows) and len(rows) == 4


def test_ddp_two_processes_on_cpu(tmp_path: Path, student: Path, paper_build: Path) -> None:
    single = train(config(student, paper_build, tmp_path / "single", max_steps=3), log=quiet)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517"]
    command = launcher + train_command(
        student,
        paper_build,
        tmp_path / "ddp",
        "--max-length",
        "256",
        "--micro-batch-size",
        "4",
        "--global-batch-size",
        "8",
        "--lr",
        "3e-3",
        "--max-steps",
        "3",
        "--seed",
        "7",
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**env, "PYTHONWARNINGS": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "ddp" / "train_report.json").read_text())
    assert report["steps"] == 3
    # The same global batches, split over two processes: the same losses up to numerics.
    for ours, theirs in zip(report["history"], single.history, strict=True):
        assert abs(ours["loss"] - theirs.loss) < 1e-3


def _torchrun(student: Path, paper_build: Path, out: Path, port: int, *options: str) -> dict:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port)]
    same = ["--max-length", "256", "--micro-batch-size", "2", "--global-batch-size", "8", "--lr", "3e-3", "--seed", "7"]
    command = launcher + train_command(student, paper_build, out, *same, *options)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": ""}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "train_report.json").read_text())


def test_fsdp_two_processes_match_one(tmp_path: Path, student: Path, paper_build: Path) -> None:
    """FSDP2 over two gloo processes: the same losses as one process on the same batches (fp32, within 1e-4), a
    sharded checkpoint that resumes to the same curve, and a saved model whole again (it loads and matches)."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    single = train(config(student, paper_build, tmp_path / "single", max_steps=4, micro_batch_size=2), log=quiet)
    report = _torchrun(student, paper_build, tmp_path / "fsdp", 29531, "--shard", "fsdp", "--max-steps", "4",
                       "--save-every", "2")  # fmt: skip
    assert report["memory_plan"]["optimizer"] < 0.6 * single.memory_plan["optimizer"], "state split over 2 ranks"
    assert len(report["peak_memory_mb_per_rank"]) == 2 and report["peak_memory_mb"] == max(
        report["peak_memory_mb_per_rank"]
    )
    for ours, theirs in zip(report["history"], single.history, strict=True):
        assert abs(ours["loss"] - theirs.loss) < 1e-4, (ours["loss"], theirs.loss)
    assert list((tmp_path / "fsdp" / "checkpoints" / "step-2" / "shards").glob("*.distcp"))
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "fsdp")
    reference = AutoModelForCausalLM.from_pretrained(tmp_path / "single")
    for (name, a), b in zip(saved.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-4), name

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(tmp_path / "fsdp" / "checkpoints" / "step-2", resumed_dir / "checkpoints" / "step-2")
    resumed = _torchrun(student, paper_build, resumed_dir, 29532, "--shard", "fsdp", "--max-steps", "4", "--resume")
    for ours, theirs in zip(resumed["history"][2:], report["history"][2:], strict=True):
        assert abs(ours["loss"] - theirs["loss"]) < 1e-5

    # LoRA sharded too: the same adapter as one process trains.
    lora = {"lora_rank": 8, "learning_rate": 5e-3, "max_steps": 2, "micro_batch_size": 2}
    train(config(student, paper_build, tmp_path / "lora-single", **lora), log=quiet)
    _torchrun(student, paper_build, tmp_path / "lora-fsdp", 29533, "--shard", "fsdp", "--max-steps", "2",
              "--lora-rank", "8", "--lr", "5e-3")  # fmt: skip
    single_adapter = load_file(tmp_path / "lora-single" / "adapter_model.safetensors")
    sharded_adapter = load_file(tmp_path / "lora-fsdp" / "adapter_model.safetensors")
    assert single_adapter.keys() == sharded_adapter.keys() and single_adapter
    for name, value in single_adapter.items():
        assert torch.allclose(value, sharded_adapter[name], atol=1e-4), name


def test_evaluate_with_the_builders_parser(tmp_path: Path, student: Path) -> None:
    from cotforge.train.evaluate import evaluate

    lines: list[str] = []
    report = evaluate(
        str(student),
        ["svamp"],
        sample=True,
        limit=3,
        max_new_tokens=8,
        batch_size=2,
        out_dir=tmp_path,
        log=lines.append,
    )
    assert report.total == 3 and 0 <= report.correct <= 3 and set(report.accuracy) == {"svamp"}
    assert [line.split(" (")[0] for line in lines] == ["eval: 2/3 answers done", "eval: 3/3 answers done"]
    import polars as pl

    from cotforge.recipes.sources import load_problems
    from cotforge.schemas import SourceSpec

    predictions = pl.read_parquet(tmp_path / "predictions.parquet")
    gold = [p.answer for p in load_problems(SourceSpec(dataset="svamp"), sample=True, limit=3).problems]
    assert predictions["gold_answer"].to_list() == gold
    for row in predictions.iter_rows(named=True):
        assert not row["correct"] or row["predicted_answer"] is not None
    assert json.loads((tmp_path / "eval_report.json").read_text())["total"] == 3


def test_push_student_with_a_model_card(tmp_path: Path, student: Path, paper_build: Path) -> None:
    from .hub_server import LocalHub

    hub = LocalHub().start()
    try:
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_TOKEN": "hf_x",
            "HF_HOME": str(tmp_path / "hf"),
        }
        command = [
            sys.executable,
            *train_command(
                student,
                paper_build,
                tmp_path / "s",
                "--max-steps",
                "2",
                "--max-length",
                "128",
                "--micro-batch-size",
                "2",
                "--global-batch-size",
                "2",
                "--push-to-hub",
                "me/student",
            ),
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        files = hub.files("me/student", repo_type="model")
    finally:
        hub.stop()
    assert {"config.json", "model.safetensors", "tokenizer.json", "train_report.json", "README.md"} <= set(files)
    card = files["README.md"].decode()
    assert str(paper_build) in card and "base_model:" in card and "gpt-4o-g2-cot" in card
    assert not any(p.startswith(("checkpoints/", "tokenized/")) for p in files)
