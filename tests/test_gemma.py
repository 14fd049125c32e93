"""A Gemma-family student beside the Llama-family ones: the real Gemma 3 270M (262k vocabulary, head size 256,
sliding-window layers), loaded from its GGUF, trained with the paper's `gemma` template and evaluated."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from cotforge.train import TrainConfig
from cotforge.train.batching import collate_packed, collate_padded
from cotforge.train.data import load_pairs, tokenize
from cotforge.train.loop import train
from cotforge.train.loss import CompletionLoss, loss_sum
from cotforge.train.student import load_causal_lm, load_tokenizer

from .students import require_gemma

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The student loaded from its GGUF once (dequantized, as `--gguf-file` does), saved as a plain folder."""
    gguf = require_gemma()
    folder = tmp_path_factory.mktemp("gemma")
    load_tokenizer(str(gguf.parent), gguf.name).save_pretrained(folder)
    load_causal_lm(str(gguf.parent), gguf.name).save_pretrained(folder)
    return str(folder)


def test_gemma_packed_rows_give_the_padded_loss(gemma: str, paper_build: Path) -> None:
    """Packed rows, whose boundaries transformers reads from the position ids, give the loss of one example per
    row on Gemma's attention too; and the loss is a pretrained model's, far below a uniform guess."""
    tokenizer = load_tokenizer(gemma)
    model = load_causal_lm(gemma).eval()
    assert model.config.model_type == "gemma3_text" and model.config.vocab_size == 262144
    pairs = load_pairs(str(paper_build), "gpt-4o-g5-cot")[:4]
    examples = tokenize(pairs, tokenizer, "gemma", 256).examples
    padded = collate_padded(examples, tokenizer.pad_token_id)
    packed = collate_packed([examples[:2], examples[2:]])
    with torch.no_grad():
        per_row = loss_sum(CompletionLoss(model), padded) / padded.completion_tokens
        per_pack = loss_sum(CompletionLoss(model), packed) / packed.completion_tokens
    assert abs(per_row.item() - per_pack.item()) < 1e-3
    assert per_row.item() < 3.0 < math.log(262144)


def test_gemma_trains_with_the_gemma_template_and_answers(tmp_path: Path, gemma: str, paper_build: Path) -> None:
    from transformers import AutoConfig

    from cotforge.train.evaluate import evaluate

    out = tmp_path / "gemma"
    settings = dict(model=gemma, dataset=str(paper_build), subset="gpt-4o-g5-cot", template="gemma")
    report = train(
        TrainConfig(
            **settings,
            output_dir=str(out),
            max_length=192,
            micro_batch_size=2,
            global_batch_size=2,
            max_steps=2,
            learning_rate=1e-5,
            warmup_ratio=0.0,
        ),
        log=lambda _: None,
    )
    assert len(report.history) == 2 and all(0 < h.loss < 3.0 for h in report.history)
    assert AutoConfig.from_pretrained(out).model_type == "gemma3_text"

    answers = evaluate(str(out), ["svamp"], sample=True, limit=2, max_new_tokens=48, batch_size=2, out_dir=tmp_path)
    assert answers.total == 2 and json.loads((tmp_path / "eval_report.json").read_text())["total"] == 2
