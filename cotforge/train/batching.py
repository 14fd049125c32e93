"""Batches with little padding: length-grouped padded batches, or several examples packed per row; and which of
the two `batching: auto` takes for the attention kernel the student runs (resolve_batching).

A packed micro-batch is one row holding all its examples end to end (its rows, planned to max_length each, only
bound its size): position ids restart at every example, and that is all the row carries. transformers reads the
boundaries from them (no attention mask given, no cache) and builds what each attention path needs:
flash-attention's varlen lengths, flex_attention's block mask, or SDPA's block-diagonal mask, sliding windows
(Gemma's) included. The loss is then the same as unpacked training, up to numerics.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from cotforge.train.config import TrainConfig
from cotforge.train.data import IGNORE, Example


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, T]
    labels: torch.Tensor  # [B, T]
    position_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor | None  # [B, T] padding mask, or None (packed: the position ids mark the examples)
    tokens: int  # real (non-padding) tokens
    completion_tokens: int  # tokens the loss is on

    @property
    def padding(self) -> int:
        return self.input_ids.numel() - self.tokens

    def to(self, device: torch.device) -> Batch:
        mask = self.attention_mask.to(device) if self.attention_mask is not None else None
        return Batch(
            self.input_ids.to(device),
            self.labels.to(device),
            self.position_ids.to(device),
            mask,
            self.tokens,
            self.completion_tokens,
        )


def length_grouped(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of similar lengths in a shuffled order: sort within windows of 64 batches, then shuffle batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 64
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def pack(lengths: list[int], max_length: int, seed: int) -> list[list[int]]:
    """Rows of examples adding up to at most max_length: first-fit by decreasing length within shuffled windows."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    rows: list[list[int]] = []
    window = 2048
    for start in range(0, len(order), window):
        open_rows: list[tuple[int, list[int]]] = []  # (free space, members)
        for index in sorted(order[start : start + window], key=lambda i: lengths[i], reverse=True):
            for slot, (free, members) in enumerate(open_rows):
                if lengths[index] <= free:
                    members.append(index)
                    open_rows[slot] = (free - lengths[index], members)
                    break
            else:
                open_rows.append((max_length - lengths[index], [index]))
        rows += [members for _, members in open_rows]
    rng.shuffle(rows)
    return rows


def collate_padded(examples: list[Example], pad_id: int) -> Batch:
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    positions = torch.arange(width).expand(len(examples), width).contiguous()
    return Batch(ids, labels, positions, mask, int(mask.sum()), int((labels != IGNORE).sum()))


def collate_packed(rows: list[list[Example]]) -> Batch:
    """The micro-batch's rows flattened into one row, without padding: TRL's padding-free layout. transformers
    reads packed examples from the position ids on every attention path only when the batch is one row
    (flash-attention's `_is_packed_sequence` is false for more), so more rows would let FA2 attend across examples."""
    examples = [example for row in rows for example in row]
    ids = torch.tensor([[token for e in examples for token in e.input_ids]], dtype=torch.long)
    labels = torch.tensor([[label for e in examples for label in e.labels]], dtype=torch.long)
    positions = torch.cat([torch.arange(len(e.input_ids)) for e in examples])[None]
    return Batch(ids, labels, positions, None, ids.shape[1], int((labels != IGNORE).sum()))


def attends_per_example(attention: str) -> bool:
    """Whether a transformers attention kernel attends each example of a packed row on its own: flash-attention's
    varlen lengths (flash_attention_2/3, the kernels hub's flash-attn) and flex attention's block mask, which skips
    the blocks between examples. SDPA and eager attend the whole row under a block-diagonal mask, so a packed row of
    n tokens costs n squared whatever it holds (benchmarks/attention_layouts.py)."""
    return attention == "flex_attention" or "flash" in attention


def resolve_batching(batching: str, attention: str) -> str:
    """The layout `batching` means with this attention kernel: auto is packed (one row) where the kernel attends per
    example and grouped (one example per row, length-grouped, little padding) where it does not; an explicit choice
    is itself."""
    if batching != "auto":
        return batching
    return "packed" if attends_per_example(attention) else "grouped"


def describe_batching(batching: str, layout: str, attention: str) -> str:
    """The log line that says which layout a run trains with, and why."""
    if batching == "auto":
        how = "attends each packed example on its own" if layout == "packed" else "would attend a packed row whole"
        return f"batching: {layout} (auto: {attention} {how})"
    if layout == "packed" and not attends_per_example(attention):
        return f"batching: packed (as asked; {attention} attends the packed row whole: grouped is faster here)"
    return f"batching: {layout} (as asked)"


def plan_batches(lengths: list[int], config: TrainConfig, layout: str, epoch: int) -> list[list[list[int]]]:
    """The epoch's micro-batches in `layout` (resolved) as example indices: each micro-batch is rows, each row the
    examples it holds (one per row unless packed). Cheap to make; tensors are built per step, not for the epoch."""
    seed, size = config.data.seed * 1000 + epoch, config.optimisation.micro_batch_size
    if layout == "packed":
        rows = pack(lengths, config.rendering.max_length, seed)
        return [rows[i : i + size] for i in range(0, len(rows), size)]
    if layout == "grouped":
        order = length_grouped(lengths, size, seed)
    else:
        indices = list(range(len(lengths)))
        random.Random(seed).shuffle(indices)
        order = [indices[i : i + size] for i in range(0, len(indices), size)]
    return [[[index] for index in batch] for batch in order]


def padded_size(micro_batch: list[list[int]], lengths: list[int], packed: bool) -> int:
    """The tokens a micro-batch's tensors hold: all its examples in one row if packed, else rows as long as the
    longest."""
    if packed:
        return sum(lengths[j] for row in micro_batch for j in row)
    return max(sum(lengths[j] for j in row) for row in micro_batch) * len(micro_batch)
