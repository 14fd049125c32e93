"""Training data: records -> (prompt, completion) -> token ids with the loss on the completion only.

Truncation is explicit and counted: an example longer than max_length keeps its prompt and loses the end of its
completion; an example whose prompt alone fills max_length is dropped. Tokenized sets are cached by content hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cotforge.answers.reasoning import split_reasoning, with_think_tags
from cotforge.quality.filters import QualityFilter
from cotforge.safety.atomic import atomic_path
from cotforge.schemas.record import ReasoningView
from cotforge.train.config import weight_shares
from cotforge.train.student import StudentError

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


def load_pairs(
    dataset: str,
    subset: str | None = None,
    split: str = "train",
    reasoning: ReasoningView = ReasoningView.drop,
    quality: QualityFilter | None = None,
) -> list[tuple[str, str]]:
    """(prompt, completion) pairs from a build directory, a Parquet file, or a Hub dataset id + subset. With
    `reasoning` keep, a record's trace comes first in the completion, in `<think>` tags (render() moves it to the
    chat template's own field where the template renders one). `quality` filters a build directory's records on
    their signals."""
    if quality is not None and quality.active and not Path(dataset).is_dir():
        raise TrainDataError(
            f"--dataset {dataset}: --min-pass-rate, --max-pass-rate, --dedup, --min-judge and --select need a build "
            "directory (the filters read every answer of a question, rejections included, and the records' scores)"
        )
    try:
        return _pairs(dataset, subset, split, reasoning, quality)
    except TrainDataError:
        raise
    except (ValueError, OSError, ConnectionError, KeyError) as error:  # missing subset, file, repo or column
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrainDataError(f"--dataset {dataset}: {text}") from None


def training_pairs(
    dataset: str,
    subset: str | None,
    split: str,
    reasoning: ReasoningView,
    mixture: dict[str, float] | None = None,
    seed: int = 0,
    quality: QualityFilter | None = None,
) -> list[tuple[str, str]]:
    """The pairs a student trains on: one subset (or all), or a mixture (see mix_pairs), filtered by `quality`."""
    if mixture is None:
        return load_pairs(dataset, subset, split, reasoning, quality)
    return mix_pairs({name: load_pairs(dataset, name, split, reasoning, quality) for name in mixture}, mixture, seed)


def mix_pairs(pairs: dict[str, list[tuple[str, str]]], weights: dict[str, float], seed: int) -> list[tuple[str, str]]:
    """The largest mixture in which each subset's share of the examples is its weight's share of the total,
    without repeating an example: each subset gives a seeded random sample of its pairs, in the subsets' order."""
    try:
        shares = weight_shares(weights)
    except ValueError as error:
        raise TrainDataError(f"mixture: {error}") from None
    empty = [name for name in shares if not pairs[name]]
    if empty:
        raise TrainDataError(f"mixture: subset {', '.join(empty)} has no examples")
    size = min(len(pairs[name]) / share for name, share in shares.items())
    rng = random.Random(seed)
    mixed: list[tuple[str, str]] = []
    for name, share in shares.items():
        mixed += rng.sample(pairs[name], min(len(pairs[name]), round(share * size)))
    return mixed


def _traced(completion: str, trace: str | None, reasoning: ReasoningView) -> str:
    return with_think_tags(trace, completion) if trace and reasoning is ReasoningView.keep else completion


def _pairs(
    dataset: str, subset: str | None, split: str, reasoning: ReasoningView, quality: QualityFilter | None
) -> list[tuple[str, str]]:
    path = Path(dataset)
    if path.is_dir():
        from cotforge.corpus import BuildDir

        directory = BuildDir(path)
        subsets = directory.read_subsets([subset] if subset else None)
        if quality is not None and quality.active:
            subsets = quality.apply_in(directory, subsets)
        return [(r.prompt, r.completion_for(reasoning)) for records in subsets.values() for r in records]
    if path.suffix == ".parquet" and path.is_file():
        import polars as pl

        columns = list(pl.read_parquet_schema(path))
        wanted = [c for c in ("prompt", "completion", "reasoning", "messages") if c in columns]
        rows: Any = pl.read_parquet(path, columns=wanted).to_dict(as_series=False)
    else:
        import datasets

        rows = datasets.load_dataset(dataset, subset, split=split)
        columns = rows.column_names
    if "prompt" in columns and "completion" in columns:
        pairs = checked_pairs(dataset, zip(rows["prompt"], rows["completion"], strict=True))
        traces = rows["reasoning"] if "reasoning" in columns else [None] * len(pairs)
        return [
            (p, _traced(c, t if isinstance(t, str) else None, reasoning))
            for (p, c), t in zip(pairs, traces, strict=True)
        ]
    if "messages" in columns:
        chats = [_chat_turns(messages) for messages in rows["messages"]]
        fields = ("messages' user turn", "messages' assistant turn")
        pairs = checked_pairs(dataset, ((user, assistant) for user, assistant, _ in chats), fields)
        return [(p, _traced(c, chat[2], reasoning)) for (p, c), chat in zip(pairs, chats, strict=True)]
    raise TrainDataError(
        f"--dataset {dataset}: needs 'prompt' and 'completion' columns, or 'messages'; "
        f"it has {', '.join(columns) or 'none'}"
    )


def _chat_turns(messages: Any) -> tuple[Any, Any, str | None]:
    """(first user turn, last assistant turn, that turn's reasoning_content) of a messages list; None for what it
    does not have."""
    turns = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
    user = next((m.get("content") for m in turns if m.get("role") == "user"), None)
    assistant = next((m for m in reversed(turns) if m.get("role") == "assistant"), {})
    trace = assistant.get("reasoning_content")
    return user, assistant.get("content"), trace if isinstance(trace, str) else None


def checked_pairs(dataset: str, rows: Any, fields: tuple[str, str] = ("prompt", "completion")) -> list[tuple[str, str]]:
    """The rows as (prompt, completion) text pairs, or TrainDataError naming the first bad row and field: checked
    before the model loads, so a bad file costs a second, not a model load."""
    pairs = []
    for index, (prompt, completion) in enumerate(rows):
        for name, value in zip(fields, (prompt, completion), strict=True):
            if not isinstance(value, str):
                what = "missing (null)" if value is None else f"a {type(value).__name__}, not text"
                raise TrainDataError(f"--dataset {dataset}: row {index}: {name} is {what}")
        pairs.append((prompt, completion))
    return pairs


def empty_completions_note(pairs: list[tuple[str, str]]) -> str | None:
    """A warning when some completions are empty: those rows teach only the end-of-sequence token."""
    empty = [index for index, (_, completion) in enumerate(pairs) if not completion.strip()]
    if not empty:
        return None
    return (
        f"warning: {len(empty)} of {len(pairs)} rows have an empty completion (first: row {empty[0]}); they train "
        "on the end-of-sequence token only"
    )


def prompt_ids(tokenizer: Any, template: str, prompt: str) -> list[int]:
    """The tokens a student sees before it answers: what training conditions on and evaluation generates from."""
    if template == "chat":
        messages = [{"role": "user", "content": prompt}]
        return list(
            tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
        )
    return tokenizer(TEMPLATES[template][0].format(prompt=prompt), add_special_tokens=True)["input_ids"]


_TRACE_PROBE = "cotforge-trace-probe"


@functools.lru_cache(maxsize=4)  # asked once per example with a trace; the answer is the tokenizer's
def renders_reasoning_content(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template writes an assistant turn's `reasoning_content` (Qwen3's does, in its
    own thinking block); most templates ignore it."""
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning_content": _TRACE_PROBE},
    ]
    try:
        return _TRACE_PROBE in tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # a template that rejects the extra key does not render it
        return False


def assistant_turn(tokenizer: Any, completion: str) -> dict[str, str]:
    """The assistant message of a completion: a leading `<think>` trace goes to `reasoning_content` where the
    chat template renders it there, and stays in the content as explicit tags where it does not."""
    split = split_reasoning(completion)
    if split.reasoning is None or not split.closed or not renders_reasoning_content(tokenizer):
        return {"role": "assistant", "content": completion}
    return {"role": "assistant", "content": split.answer, "reasoning_content": split.reasoning}


def render(tokenizer: Any, template: str, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """Prompt ids and completion ids of one example."""
    head = prompt_ids(tokenizer, template, prompt)
    if template == "chat":
        messages = [{"role": "user", "content": prompt}, assistant_turn(tokenizer, completion)]
        full = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))
        if full[: len(head)] == head:
            return head, full[len(head) :]
        # A template that changes earlier tokens once the answer is there: tokenize the answer on its own.
        return head, tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    tail = tokenizer(TEMPLATES[template][1].format(completion=completion), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return head, tail + ([eos] if eos is not None and template in ("plain", "alpaca") else [])


def fitted(head: list[int], tail: list[int], max_length: int) -> Example | None:
    """The example of prompt ids `head` and completion ids `tail` in at most max_length tokens: the completion's end
    cut where it does not fit; None when the prompt alone fills max_length."""
    if len(head) >= max_length:
        return None
    kept = tail[: max_length - len(head)]
    return Example(head + kept, [IGNORE] * len(head) + kept)


def resolve_template(tokenizer: Any, template: str) -> str:
    """The template `template` names for this tokenizer (auto: chat where it has a chat template, else plain);
    StudentError for a name it does not know, or chat for a tokenizer without one."""
    if template == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "plain"
    if template != "chat" and template not in TEMPLATES:
        raise StudentError(f"unknown template {template!r}; choose auto, chat or one of {', '.join(TEMPLATES)}")
    if template == "chat" and not getattr(tokenizer, "chat_template", None):
        raise StudentError("the tokenizer has no chat template: use --template plain (or alpaca, gemma, llama3)")
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
        try:  # weights_only: a file planted in the output folder cannot run code; one that fails is made again
            data = torch.load(cached, weights_only=True)
            return TokenizedSet([Example(*e) for e in data["examples"]], **data["counts"])
        except Exception:
            pass
    result = TokenizedSet([])
    for prompt, completion in pairs:
        head, tail = render(tokenizer, template, prompt, completion)
        example = fitted(head, tail, max_length)
        if example is None:
            result.dropped += 1
            continue
        kept = len(example.input_ids) - len(head)
        if kept < len(tail):
            result.truncated += 1
            result.completion_tokens_cut += len(tail) - kept
        result.completion_tokens += kept
        result.examples.append(example)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        counts = {k: v for k, v in result.summary().items() if k != "examples"}
        # Written aside, then renamed: DDP ranks tokenize at once, and one must never read another's half file.
        with atomic_path(cached) as partial:
            torch.save({"examples": [(e.input_ids, e.labels) for e in result.examples], "counts": counts}, partial)
    return result
