"""Each completion token's surprisal and rank under the student, from batches the trainer's way: the backbone once,
then the output layer a chunk of rows at a time (cotforge/train/loss.py), so no [tokens x vocabulary] tensor is
ever whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from cotforge.quality.rsr import RANK_CLIP
from cotforge.train.batching import Batch
from cotforge.train.loss import chunk_rows, completion_states, exact_matmuls, output_logits, output_softcap


@dataclass(frozen=True)
class TokenSums:
    """One example's completion tokens, their summed surprisal and summed clipped rank."""

    tokens: int
    surprisal: float
    rank: float


def surprisal_and_rank(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of `hidden`: -log softmax(logits)[target] (nats), and 1 + the number of logits strictly above the
    target's, clipped at RANK_CLIP; logits in fp32 at least."""
    exact = torch.promote_types(weight.dtype, torch.float32)
    surprisal = torch.empty(len(targets), dtype=exact, device=hidden.device)
    rank = torch.empty(len(targets), dtype=torch.long, device=hidden.device)
    rows = chunk_rows(weight.shape[0])
    with exact_matmuls(hidden.device):
        head = weight.to(exact)
        for start in range(0, hidden.shape[0], rows):
            end = start + rows
            logits, _ = output_logits(hidden[start:end].to(exact), head, bias, softcap)
            chosen = logits.gather(1, targets[start:end, None])
            surprisal[start:end] = logits.logsumexp(-1) - chosen.squeeze(1)
            rank[start:end] = ((logits > chosen).sum(-1) + 1).clamp(max=RANK_CLIP)
    return surprisal, rank


@torch.no_grad()
def score_batch(model: Any, batch: Batch, compute: torch.dtype) -> list[TokenSums]:
    """The sums of every example (row) of a padded batch; padding and prompt tokens count in none."""
    device = batch.input_ids.device
    with torch.autocast(device.type, dtype=compute, enabled=compute != torch.float32):
        hidden, targets, chosen = completion_states(
            model, batch.input_ids, batch.labels, batch.position_ids, batch.attention_mask
        )
    head = model.get_output_embeddings()
    surprisal, rank = surprisal_and_rank(hidden, head.weight, targets, head.bias, output_softcap(model))
    example = chosen.nonzero()[:, 0]
    size = batch.input_ids.shape[0]
    tokens = torch.bincount(example, minlength=size)
    # float64 sums: a long completion's thousands of terms add up without fp32's rounding
    surprisals = torch.zeros(size, dtype=torch.float64, device=device).index_add_(0, example, surprisal.double())
    ranks = torch.zeros(size, dtype=torch.float64, device=device).index_add_(0, example, rank.double())
    return [
        TokenSums(int(n), float(s), float(r))
        for n, s, r in zip(tokens.tolist(), surprisals.tolist(), ranks.tolist(), strict=True)
    ]
