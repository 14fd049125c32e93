"""Training data: records -> (prompt, completion) -> token ids with the loss on the completion only.

Truncation is explicit and counted: an example longer than max_length keeps its prompt and loses the end of its
completion; an example whose prompt alone fills max_length is dropped. Tokenized sets are cached by content hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

IGNORE = -100

# Plain templates for tokenizers without a chat template, and the paper's LLaMA-Factory templates.
TEMPLATES = {
    "plain": ("Question: {prompt}\nAnswer: ", "{completion}"),
    "alpaca": (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\n{prompt}\n\n### Response:\n",
        "{completion}",
    ),
    "gemma": ("<start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n", "{completion}<end_of_turn>\n"),
    "llama3": (
        "<|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
        "\n\n",
        "{completion}<|eot_id|>",
    ),
}


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens


@dataclass
class TokenizedSet:
    examples: list[Example]
    truncated: int = 0  # examples whose completion was cut at max_length
    completion_tokens_cut: int = 0
    dropped: int = 0  # examples whose prompt alone reached max_length
    completion_tokens: int = 0  # completion tokens kept

    def summary(self) -> dict[str, int]:
        return {
            "examples": len(self.examples),
            "truncated": self.truncated,
            "dropped": self.dropped,
            "completion_tokens": self.completion_tokens,
            "completion_tokens_cut": self.completion_tokens_cut,
        }


class TrainDataError(ValueError):
    """Training data that cannot be read; the message names the data set and why."""


def load_pairs(dataset: str, subset: str | None = None, split: str = "train") -> list[tuple[str, str]]:
    """(prompt, completion) pairs from a build directory, a Parquet file, or a Hub dataset id + subset."""
    try:
        return _pairs(dataset, subset, split)
    except TrainDataError:
        raise
    except (ValueError, OSError, ConnectionError, KeyError) as error:  # missing subset, file, repo or column
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrainDataError(f"--dataset {dataset}: {text}") from None


def _pairs(dataset: str, subset: str | None, split: str) -> list[tuple[str, str]]:
    path = Path(dataset)
    if path.is_dir():
        from cotforge.corpus import BuildDir

        records = BuildDir(path).read_records([subset] if subset else None)
        return [(r.prompt, r.completion) for r in records]
    if path.suffix == ".parquet" and path.is_file():
        import polars as pl

        frame = pl.read_parquet(path, columns=["prompt", "completion"])
        return list(zip(frame["prompt"].to_list(), frame["completion"].to_list(), strict=True))
    import datasets

    rows = datasets.load_dataset(dataset, subset, split=split)
    if "prompt" in rows.column_names and "completion" in rows.column_names:
        return list(zip(rows["prompt"], rows["completion"], strict=True))
    if "messages" in rows.column_names:
        pairs = []
        for messages in rows["messages"]:
            user = next(m["content"] for m in messages if m["role"] == "user")
            assistant = next(m["content"] for m in reversed(messages) if m["role"] == "assistant")
            pairs.append((user, assistant))
        return pairs
    raise TrainDataError(f"--dataset {dataset}: needs 'prompt' and 'completion' columns, or 'messages'")


def prompt_ids(tokenizer: Any, template: str, prompt: str) -> list[int]:
    """The tokens a student sees before it answers: what training conditions on and evaluation generates from."""
    if template == "chat":
        messages = [{"role": "user", "content": prompt}]
        return list(
            tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
        )
    return tokenizer(TEMPLATES[template][0].format(prompt=prompt), add_special_tokens=True)["input_ids"]


def render(tokenizer: Any, template: str, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """Prompt ids and completion ids of one example."""
    head = prompt_ids(tokenizer, template, prompt)
    if template == "chat":
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        full = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))
        if full[: len(head)] == head:
            return head, full[len(head) :]
        # A template that changes earlier tokens once the answer is there: tokenize the answer on its own.
        return head, tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    tail = tokenizer(TEMPLATES[template][1].format(completion=completion), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return head, tail + ([eos] if eos is not None and template in ("plain", "alpaca") else [])


def resolve_template(tokenizer: Any, template: str) -> str:
    if template == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "plain"
    if template != "chat" and template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; choose auto, chat or one of {', '.join(TEMPLATES)}")
    if template == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template: use --template plain (or alpaca, gemma, llama3)")
    return template


def _cache_key(tokenizer: Any, template: str, max_length: int, pairs: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    identity = [
        getattr(tokenizer, "name_or_path", ""),
        len(tokenizer),
        getattr(tokenizer, "chat_template", None),
        template,
        max_length,
    ]
    digest.update(json.dumps(identity, default=str).encode())
    for prompt, completion in pairs:
        digest.update(prompt.encode())
        digest.update(b"\0")
        digest.update(completion.encode())
        digest.update(b"\1")
    return digest.hexdigest()[:24]


def tokenize(
    pairs: list[tuple[str, str]], tokenizer: Any, template: str, max_length: int, cache_dir: Path | None = None
) -> TokenizedSet:
    key = _cache_key(tokenizer, template, max_length, pairs)
    cached = cache_dir / f"{key}.pt" if cache_dir else None
    if cached is not None and cached.exists():
        data = torch.load(cached, weights_only=False)
        return TokenizedSet([Example(*e) for e in data["examples"]], **data["counts"])
    result = TokenizedSet([])
    for prompt, completion in pairs:
        head, tail = render(tokenizer, template, prompt, completion)
        if len(head) >= max_length:
            result.dropped += 1
            continue
        room = max_length - len(head)
        if len(tail) > room:
            result.truncated += 1
            result.completion_tokens_cut += len(tail) - room
            tail = tail[:room]
        result.completion_tokens += len(tail)
        result.examples.append(Example(head + tail, [IGNORE] * len(head) + tail))
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        counts = {k: v for k, v in result.summary().items() if k != "examples"}
        # Written aside, then renamed: DDP ranks tokenize at once, and one must never read another's half file.
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
        torch.save({"examples": [(e.input_ids, e.labels) for e in result.examples], "counts": counts}, partial)
        partial.replace(cached)
    return result
