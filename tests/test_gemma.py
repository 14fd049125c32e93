"""A Gemma-family student beside the Llama-family ones: the real Gemma 3 270M (262k vocabulary, head size 256,
sliding-window layers), loaded from its GGUF, gives a pretrained model's loss with the paper's `gemma` template; a tiny
Gemma 3 with its tokenizer (its 270M weights would cost minutes of CPU a step) is trained with that template and
evaluated."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

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
def gemma_tokenizer() -> Any:
    """Its tokenizer, read from the GGUF once: each load of its 262k vocabulary costs about 15 s."""
    gguf = require_gemma()
    return load_tokenizer(str(gguf.parent), gguf.name)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory, gemma_tokenizer: Any) -> str:
    """The student loaded from its GGUF once (dequantized, as `--gguf-file` does), saved as a plain folder."""
    gguf = require_gemma()
    folder = tmp_path_factory.mktemp("gemma")
    gemma_tokenizer.save_pretrained(folder)
    load_causal_lm(str(gguf.parent), gguf.name).save_pretrained(folder)
    return str(folder)


def tiny_gemma(folder: Path, gemma: str) -> str:
    """A randomly initialised Gemma 3 with the real one's tokenizer and config (its rope, norms, soft-capping), cut to
    two small layers: a sliding-window one, whose window (64) is shorter than the rows, and a global one."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(gemma)
    small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, head_dim=32)
    for name, value in {**small, "query_pre_attn_scalar": 32, "sliding_window": 64}.items():
        setattr(config, name, value)
    config.layer_types = ["sliding_attention", "full_attention"]
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    for tokenizer_file in Path(gemma).glob("tokenizer*"):
        shutil.copy(tokenizer_file, folder)
    return str(folder)


def test_gemma_packed_rows_give_the_padded_loss(gemma: str, gemma_tokenizer: Any, paper_build: Path) -> None:
    """Packed rows, whose boundaries transformers reads from the position ids, give the loss of one example per
    row on Gemma's attention too; and the loss is a pretrained model's, far below a uniform guess."""
    model = load_causal_lm(gemma).eval()
    assert model.config.model_type == "gemma3_text" and model.config.vocab_size == 262144
    pairs = load_pairs(str(paper_build), "gpt-4o-g5-cot")[:4]
    examples = tokenize(pairs, gemma_tokenizer, "gemma", 256).examples
    padded = collate_padded(examples, gemma_tokenizer.pad_token_id)
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
    student = tiny_gemma(tmp_path / "tiny", gemma)
    settings = dict(model=student, dataset=str(paper_build), subset="gpt-4o-g5-cot", template="gemma")
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
    # Untrained, the model guesses about uniformly: a per-token mean over the completion near ln(262,144).
    assert len(report.history) == 2 and all(abs(h.loss - math.log(262144)) < 0.5 for h in report.history)
    assert AutoConfig.from_pretrained(out).model_type == "gemma3_text"

    answers = evaluate(str(out), ["svamp"], sample=True, limit=2, max_new_tokens=48, batch_size=2, out_dir=tmp_path)
    assert answers.total == 2 and json.loads((tmp_path / "eval_report.json").read_text())["total"] == 2
