"""Attention's share of a packed micro-batch, by layout: the same examples attended as one packed row, as several
packed rows, as length-grouped padded rows, and one sequence at a time (what flash-attention's varlen path does).

    python benchmarks/attention_layouts.py [--rows 8] [--max-length 512] [--repeats 3] [--attention sdpa] [--threads 1]

Examples: the first packed micro-batch (`--rows` rows of at most `--max-length` tokens, cotforge's `pack`) of the
paper's SVAMP CoTs tokenized for SmolLM2-135M-Instruct (the student and corpus of train_throughput.py). For each
layout, transformers builds the mask it builds in training (create_causal_mask from the position ids and padding
mask) and one layer of SmolLM2's attention (its heads, grouped keys and head size) runs forward and backward through
transformers' own attention function, fp32, on the CPU. Figures: the median over `--repeats`, milliseconds per
layer and micro-batch, the real tokens it attends per second, and the mask's bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def packed_rows(rows: list[list[Any]], pad_id: int) -> Any:
    """Each row packed, the rows side by side (the layout before one-row packing): what SDPA, eager and flex
    attention read per row from the position ids, flash-attention's varlen path does not (one row only). A shorter
    row ends in padding laid out as one more example, its positions restarting at 0, no loss on it."""
    from cotforge.train.batching import Batch, collate_packed
    from cotforge.train.data import IGNORE

    packed = [collate_packed([row]) for row in rows]
    width = max(batch.input_ids.shape[1] for batch in packed)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for index, batch in enumerate(packed):
        n = batch.input_ids.shape[1]
        ids[index, :n], labels[index, :n] = batch.input_ids[0], batch.labels[0]
        positions[index, :n], positions[index, n:] = batch.position_ids[0], torch.arange(width - n)
    tokens, completion = sum(b.tokens for b in packed), sum(b.completion_tokens for b in packed)
    return Batch(ids, labels, positions, None, tokens, completion)


def layouts(rows: list[list[Any]], pad_id: int) -> dict[str, list[Any]]:
    """The micro-batch's examples as the batches of each layout (per sequence: one batch per example)."""
    from cotforge.train.batching import collate_packed, collate_padded

    examples = [example for row in rows for example in row]
    by_length = sorted(examples, key=lambda e: len(e.input_ids), reverse=True)
    width = len(rows)
    return {
        "one packed row": [collate_packed(rows)],
        "packed rows": [packed_rows(rows, pad_id)],
        "grouped": [collate_padded(by_length[i : i + width], pad_id) for i in range(0, len(by_length), width)],
        "per sequence": [collate_packed([[example]]) for example in examples],
    }


def attention_step(config: Any, attend: Any, batch: Any, generator: torch.Generator) -> tuple[float, int]:
    """One layer's attention forward and backward over `batch`: seconds, and the mask's bytes."""
    from transformers.masking_utils import create_causal_mask

    rows, length = batch.input_ids.shape
    heads, groups = config.num_attention_heads, config.num_attention_heads // config.num_key_value_heads
    size = config.hidden_size // heads
    embeds = torch.empty(rows, length, config.hidden_size)
    mask = create_causal_mask(config, embeds, batch.attention_mask, None, batch.position_ids)
    query = torch.randn(rows, heads, length, size, generator=generator, requires_grad=True)
    key = torch.randn(rows, heads // groups, length, size, generator=generator, requires_grad=True)
    value = torch.randn(rows, heads // groups, length, size, generator=generator, requires_grad=True)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal, module.training = groups, True, True
    started = time.perf_counter()
    out, _ = attend(module, query, key, value, mask, dropout=0.0, scaling=size**-0.5)
    out.sum().backward()
    return time.perf_counter() - started, mask.numel() * mask.element_size() if mask is not None else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--attention", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "cotforge-bench"))
    args = parser.parse_args()
    from train_throughput import paper_corpus, student_folder
    from transformers import AutoConfig
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    from cotforge.train.batching import pack
    from cotforge.train.data import load_pairs, resolve_template, tokenize
    from cotforge.train.student import load_tokenizer

    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    folder = student_folder(cache)
    tokenizer = load_tokenizer(str(folder))
    pairs = load_pairs(str(paper_corpus(cache)), "gpt-4o-g5-cot")
    data = tokenize(pairs, tokenizer, resolve_template(tokenizer, "auto"), args.max_length)
    plan = pack([len(e.input_ids) for e in data.examples], args.max_length, seed=100)[: args.rows]
    rows = [[data.examples[j] for j in row] for row in plan]
    config = AutoConfig.from_pretrained(folder)
    config._attn_implementation = args.attention
    attend = ALL_ATTENTION_FUNCTIONS[args.attention]
    tokens = sum(len(e.input_ids) for row in rows for e in row)
    examples = sum(len(row) for row in rows)
    print(f"{examples} examples, {tokens} tokens in {len(rows)} packed rows of at most {args.max_length}; "
          f"{args.attention}, one layer of {config.num_attention_heads} heads, fp32, CPU ({torch.get_num_threads()} "
          "threads)")  # fmt: skip
    print(f"{'layout':<16} {'shape':>18} {'ms':>8} {'tokens/s':>10} {'vs one row':>10} {'mask MB':>8}")
    baseline = None
    for name, batches in layouts(rows, tokenizer.pad_token_id).items():
        generator = torch.Generator().manual_seed(0)
        runs = [[attention_step(config, attend, b, generator) for b in batches] for _ in range(args.repeats + 1)]
        seconds = statistics.median(sum(s for s, _ in run) for run in runs[1:])  # the first run warms up
        mask_mb = max(m for _, m in runs[0]) / 2**20
        baseline = baseline or seconds
        shape = f"{len(batches)} x {list(batches[0].input_ids.shape)}" if len(batches) > 1 else str(
            list(batches[0].input_ids.shape))  # fmt: skip
        print(f"{name:<16} {shape:>18} {seconds * 1000:>8.1f} {tokens / seconds:>10.0f} "
              f"{baseline / seconds:>9.2f}x {mask_mb:>8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
