"""The training loss: next-token cross-entropy on completion tokens only, with the output layer and the
cross-entropy fused and taken a chunk of tokens at a time.

The logits of a whole micro-batch are tokens x vocabulary floats: with 4,096 completion tokens that is 0.8 GB for
SmolLM2's 49k vocabulary and 4.3 GB for Gemma 3's 262k, held three times over (logits, log-softmax for backward,
their gradient) by a plain `cross_entropy`. Here each chunk's logits live only while its gradients are made, in the
forward pass (the loss is a scalar, so the backward pass only scales them): the same arithmetic, no recomputation,
and one chunk's logits in memory at a time. The idea is Liger-Kernel's fused linear cross-entropy, in plain PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from cotforge.train.batching import Batch
from cotforge.train.data import IGNORE

CHUNK_ELEMENTS = 2**26  # logits per chunk: 256 MB in fp32, whatever the vocabulary


def chunk_rows(vocab_size: int) -> int:
    return max(1, CHUNK_ELEMENTS // vocab_size)


@contextmanager
def exact_matmuls(device: torch.device) -> Iterator[None]:
    """The output layer's products in fp32 even under autocast (which would run them, and round the logits, in
    bf16). On CUDA they may use TF32 tensor cores: fp32 sums and outputs from inputs rounded to 10 mantissa bits,
    finer than bf16's 7, at a fraction of full fp32's cost."""
    with torch.autocast(device.type, enabled=False):
        if device.type != "cuda":
            yield
            return
        matmul = torch.backends.cuda.matmul
        name, value = ("fp32_precision", "tf32") if hasattr(matmul, "fp32_precision") else ("allow_tf32", True)
        kept = getattr(matmul, name)  # allow_tf32 before torch 2.9
        setattr(matmul, name, value)
        try:
            yield
        finally:
            setattr(matmul, name, kept)


def output_logits(
    part: torch.Tensor, head: torch.Tensor, bias: torch.Tensor | None, softcap: float | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The logits of a chunk of hidden states, and with a softcap the tanh they were squashed by (its gradient
    needs it)."""
    logits = part @ head.T
    if bias is not None:
        logits = logits + bias
    if not softcap:
        return logits, None
    squashed = torch.tanh(logits / softcap)  # Gemma 2: logits = cap * tanh(raw / cap)
    return squashed * softcap, squashed


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        softcap: float | None,
    ) -> torch.Tensor:
        wants_grad = any(ctx.needs_input_grad[:3])
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        exact = torch.promote_types(weight.dtype, torch.float32)  # logits, their gradients and sums: fp32 at least
        grad_weight = torch.zeros_like(weight, dtype=exact) if ctx.needs_input_grad[1] else None
        grad_bias = torch.zeros_like(bias, dtype=exact) if ctx.needs_input_grad[2] else None
        total = torch.zeros((), dtype=exact, device=hidden.device)
        rows = chunk_rows(weight.shape[0])
        with exact_matmuls(hidden.device):
            head = weight.to(exact)  # once, not per chunk: a 262k vocabulary's head is the largest tensor here
            for start in range(0, hidden.shape[0], rows):
                part = hidden[start : start + rows].to(exact)
                chosen = targets[start : start + rows]
                logits, squashed = output_logits(part, head, bias, softcap)
                log_norm = logits.logsumexp(-1)
                total += (log_norm - logits.gather(1, chosen[:, None]).squeeze(1)).sum()
                if not wants_grad:
                    continue
                # d loss / d logits = softmax - one-hot, made in place over the logits
                grad_logits = logits.sub_(log_norm[:, None]).exp_()
                grad_logits[torch.arange(len(chosen), device=chosen.device), chosen] -= 1
                if squashed is not None:
                    grad_logits *= 1 - squashed.square()
                if grad_bias is not None:
                    grad_bias += grad_logits.sum(0)
                if grad_hidden is not None:
                    grad_hidden[start : start + rows] = grad_logits @ head
                if grad_weight is not None:
                    grad_weight += grad_logits.T @ part
        # Made here, not inputs or outputs: kept on ctx rather than through save_for_backward.
        ctx.grads = (grad_hidden, grad_weight, grad_bias)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grads = [
            (grad * grad_output).to(dtype) if grad is not None else None
            for grad, dtype in zip(ctx.grads, ctx.dtypes, strict=True)
        ]
        return (*grads, None, None)


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
) -> torch.Tensor:
    """Sum over rows of cross_entropy(hidden @ weight.T + bias, targets), logits never whole in memory."""
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, softcap)


class CompletionLoss(torch.nn.Module):
    """Sum of next-token cross-entropy over completion tokens; logits only where the loss is taken, a chunk at a
    time.

    A module of its own so that DDP, FSDP and torch.compile wrap exactly the computation that runs."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        hidden, targets, _ = completion_states(self.model, input_ids, labels, position_ids, attention_mask)
        head = self.model.get_output_embeddings()
        return linear_cross_entropy(hidden, head.weight, targets, head.bias, output_softcap(self.model))


def completion_states(
    model: Any,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    position_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The backbone's last hidden states at the positions that predict a completion token, those tokens, and
    where they are ([B, T-1] mask): the only rows the output layer needs."""
    # No cache: it would hold every layer's keys and values, and with none, packed rows are read from the
    # position ids (batching.py).
    hidden = model.base_model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
    ).last_hidden_state
    targets = labels[:, 1:]
    chosen = targets != IGNORE
    return hidden[:, :-1][chosen], targets[chosen], chosen


def output_softcap(model: Any) -> float | None:
    return getattr(model.config, "final_logit_softcapping", None)


def loss_sum(loss: torch.nn.Module, batch: Batch) -> torch.Tensor:
    return loss(batch.input_ids, batch.labels, batch.position_ids, batch.attention_mask)


def compile_backbone(loss: CompletionLoss, backend: str = "inductor") -> None:
    """torch.compile the backbone in place, traced once for any length (`dynamic`). The chunked loss stays eager
    on purpose: its selection of completion positions has a data-dependent shape (a graph break) and its loop
    runs once per chunk of a count that changes every step, which a traced graph unrolls and so recompiles until
    dynamo's recompile limit leaves the whole step eager."""
    loss.model.base_model.compile(backend=backend, dynamic=True)
