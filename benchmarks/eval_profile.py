"""Where the evaluation's time goes on the CPU: prefill against decode, prompt padding, decode steps spent on rows
that had already finished; then transformers' continuous batching (`generate_batch`) against `generate` on a few
questions, with how many greedy answers agree (issue #39).

    python benchmarks/eval_profile.py --student DIR --build DIR [--limit 48] [--max-new-tokens 160] [--batch-size 16]

Batches are those of cotforge.train.evaluate: longest prompt first, left padded. Prefill is one forward pass over a
batch's prompts, timed apart from its generate() call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def profile_batches(model: Any, prompts: list[list[int]], eos: int, max_new_tokens: int, batch_size: int) -> dict:
    """Per batch of today's path: prefill and generate seconds, and each row's tokens up to its end of sequence."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    totals = {"prefill_s": 0.0, "generate_s": 0.0, "padding": 0, "prompt_tokens": 0, "row_steps": 0, "useful": 0}
    for start in range(0, len(order), batch_size):
        chunk = [prompts[i] for i in order[start : start + batch_size]]
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), eos, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(chunk):
            ids[row, width - len(prompt) :], mask[row, width - len(prompt) :] = torch.tensor(prompt), 1
        with torch.no_grad():
            started = time.monotonic()
            model(input_ids=ids, attention_mask=mask)
            totals["prefill_s"] += time.monotonic() - started
            started = time.monotonic()
            generated = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                       max_new_tokens=max_new_tokens, pad_token_id=eos)[:, width:]  # fmt: skip
            totals["generate_s"] += time.monotonic() - started
        ended = generated == eos
        lengths = torch.where(ended.any(1), ended.int().argmax(1) + 1, generated.shape[1])
        totals["padding"] += int((mask == 0).sum())
        totals["prompt_tokens"] += mask.numel()
        totals["row_steps"] += generated.numel()
        totals["useful"] += int(lengths.sum())
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in totals.items()}


def compare_continuous(model: Any, prompts: list[list[int]], eos: int, max_new_tokens: int) -> dict:
    """generate (one padded batch) against generate_batch (continuous batching) on the same prompts."""
    from transformers import GenerationConfig

    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=eos)
    started = time.monotonic()
    continuous = model.generate_batch(prompts, generation_config=config)
    continuous_s = time.monotonic() - started
    by_request = [continuous[f"req_{i}"].generated_tokens for i in range(len(prompts))]
    started = time.monotonic()
    padded = [_strip(row, eos) for row in _generate_padded(model, prompts, config)]
    padded_s = time.monotonic() - started
    same = sum(_strip(a, eos) == b for a, b in zip(by_request, padded, strict=True))
    return {
        "questions": len(prompts),
        "generate_s": round(padded_s, 1),
        "generate_batch_s": round(continuous_s, 1),
        "generate_batch_speedup": round(padded_s / continuous_s, 2),
        "same_tokens": f"{same}/{len(prompts)}",
    }


def _generate_padded(model: Any, prompts: list[list[int]], config: Any) -> list[list[int]]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), config.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :], mask[row, width - len(prompt) :] = torch.tensor(prompt), 1
    with torch.no_grad():
        return model.generate(input_ids=ids, attention_mask=mask, generation_config=config)[:, width:].tolist()


def _strip(tokens: list[int], eos: int) -> list[int]:
    """Tokens up to and with the first end of sequence (generate pads finished rows with it)."""
    return tokens[: tokens.index(eos) + 1] if eos in tokens else list(tokens)


def main() -> None:
    from benchmarks.eval_speed import first_problems
    from cotforge.train.data import prompt_ids, resolve_template
    from cotforge.train.student import load_causal_lm, load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True)
    parser.add_argument("--build", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--continuous", type=int, default=8, help="questions for generate_batch vs generate")
    parser.add_argument("--continuous-tokens", type=int, default=40)
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.student)
    template = resolve_template(tokenizer, "auto")
    prompts = [prompt_ids(tokenizer, template, p.student_prompt()) for p in first_problems(args.build, args.limit)]
    model = load_causal_lm(args.student, None, torch.float32).eval()
    eos = tokenizer.eos_token_id
    summary = {"today": profile_batches(model, prompts, eos, args.max_new_tokens, args.batch_size)}
    if args.continuous:
        summary["continuous"] = compare_continuous(model, prompts[: args.continuous], eos, args.continuous_tokens)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
