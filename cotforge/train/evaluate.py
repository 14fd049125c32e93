"""Evaluate a student: batched greedy generation, then the builders' own answer parser and verifier."""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cotforge.answers import answers_match, extract_answer
from cotforge.answers.reasoning import split_reasoning
from cotforge.corpus import EvalDir, StudentDir
from cotforge.recipes.sources import load_problems
from cotforge.schemas.problem import Problem
from cotforge.schemas.recipe import SourceSpec
from cotforge.train.data import prompt_ids, resolve_template


@dataclass
class EvalReport:
    model: str
    accuracy: dict[str, float]  # per data set
    total: int
    correct: int
    parsed: int  # generations with a final answer line ("The answer is", \boxed, ####), not just a last number
    wall_time_s: float
    unclosed: int = 0  # thinking students' generations whose trace never closed: no answer, counted wrong


class _Progress:
    """A line every few seconds while a batch generates (a CPU batch takes minutes): called by generate() after
    each new token as a stopping criterion that never stops anything."""

    def __init__(self, total: int, max_new_tokens: int, log: Callable[[str], None], every_s: float = 5.0) -> None:
        self.total, self.max_new_tokens, self.log, self.every_s = total, max_new_tokens, log, every_s
        self.started = self.last = time.monotonic()
        self.done = 0
        self.tokens = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.tokens += 1
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self.log(
                f"eval: {self.done}/{self.total} answers done; this batch of {input_ids.shape[0]} at token "
                f"{self.tokens} of at most {self.max_new_tokens} ({now - self.started:.0f} s)"
            )
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def _generate_transformers(
    model_dir: str,
    tokenizer: Any,
    prompts: list[list[int]],
    max_new_tokens: int,
    batch_size: int,
    gguf_file: str | None,
    log: Callable[[str], None] | None = None,
) -> list[str]:
    from transformers import StoppingCriteriaList

    from cotforge.train.student import load_causal_lm

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = load_causal_lm(model_dir, gguf_file, dtype).to(device).eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    outputs: list[str] = [""] * len(prompts)
    # Longest first, so each batch holds prompts of similar length and little left padding.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    progress = _Progress(len(prompts), max_new_tokens, log) if log else None
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):  # left padding: every prompt ends where generation starts
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]) :] = 1
        with torch.no_grad():
            generated = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                do_sample=False,
                max_new_tokens=max_new_tokens,
                pad_token_id=pad,
                use_cache=True,
                stopping_criteria=StoppingCriteriaList([progress]) if progress else None,
            )
        for row, i in enumerate(chunk):
            outputs[i] = tokenizer.decode(generated[row, width:], skip_special_tokens=True)
        if progress:
            progress.done += len(chunk)
            progress.tokens = 0
            progress.log(
                f"eval: {progress.done}/{len(prompts)} answers done ({time.monotonic() - progress.started:.0f} s)"
            )
    return outputs


def vllm_can_run(model_dir: str, gguf_file: str | None) -> bool:
    """vLLM where it is installed, on a GPU, for a plain model folder (a LoRA folder loads through peft instead)."""
    import importlib.util

    adapter = StudentDir(Path(model_dir)).is_adapter
    return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None and not gguf_file and not adapter


def release_memory() -> None:
    """Give back what nothing references any more: Python's cycles first, then the CUDA allocator's cached blocks
    (the sweep trains a student in this process just before evaluating it)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def vllm_memory_share(headroom: float = 0.9) -> float:
    """vLLM's gpu_memory_utilization: its share of the whole GPU, which must be free when it starts (its default,
    0.9, is not after training here, or beside another process); 90% of what is free."""
    release_memory()
    free, total = torch.cuda.mem_get_info()
    return math.floor(free * headroom / total * 1000) / 1000


def _shut_down(llm: Any) -> None:
    """Stop the engine now rather than whenever it is collected: the sweep's next cell starts another."""
    stop = getattr(llm, "shutdown", None) or getattr(getattr(llm.llm_engine, "engine_core", None), "shutdown", None)
    if stop is not None:
        stop()


def _generate_vllm(model_dir: str, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_dir, gpu_memory_utilization=vllm_memory_share())
    try:
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        results = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    finally:
        _shut_down(llm)
        del llm
        release_memory()
    return [r.outputs[0].text for r in results]


def scored_generation(problem: Problem, text: str) -> dict[str, Any]:
    """One prediction row: the answer read after a thinking student's trace (the whole text for a student that does
    not think); none where the trace never closed."""
    split = split_reasoning(text)
    parsed = extract_answer(split.answer, problem.answer_type, problem.choices) if split.closed else None
    correct = parsed is not None and answers_match(parsed.answer, problem.answer, problem.answer_type, problem.choices)
    return {
        "problem_id": problem.id,
        "dataset": problem.dataset,
        "question": problem.question,
        "gold_answer": problem.answer,
        "generation": text,
        "reasoning": split.reasoning,
        "trace_closed": split.closed,
        "predicted_answer": parsed.answer if parsed else None,
        "answer_source": parsed.source.value if parsed else None,
        "correct": correct,
    }


def evaluate(
    model_dir: str,
    datasets: list[str],
    *,
    split: str = "test",
    sample: bool = False,
    limit: int | None = None,
    **options: Any,
) -> EvalReport:
    """Accuracy of a student on built-in benchmarks; `options` are those of evaluate_problems."""
    problems: list[Problem] = []
    for name in datasets:
        problems += load_problems(SourceSpec(dataset=name, split=split), sample=sample, limit=limit).problems
    return evaluate_problems(model_dir, problems, **options)


def evaluate_problems(
    model_dir: str,
    problems: list[Problem],
    *,
    template: str = "auto",
    max_new_tokens: int = 256,
    batch_size: int = 16,
    gguf_file: str | None = None,
    out_dir: Path | None = None,
    use_vllm: bool | None = None,
    log: Callable[[str], None] | None = None,
    thinking_tokens: int = 0,
) -> EvalReport:
    """Greedy answers of a student to `problems`, scored with the builders' parser and verifier. With `out_dir`,
    writes predictions.parquet (one row per problem, in order) and eval_report.json.

    A thinking student writes `<think>…</think>` before its answer: `thinking_tokens` is its trace's budget, on top
    of `max_new_tokens` for the answer, and the answer is read only after `</think>`. A generation whose trace never
    closed has no answer: it counts as wrong and is reported apart (`unclosed`)."""
    from cotforge.train.student import load_tokenizer

    started = time.monotonic()
    tokenizer = load_tokenizer(model_dir, gguf_file)
    student = StudentDir(model_dir)
    trained_with = student.trained_template()
    if template == "auto" and trained_with is not None:  # evaluate with the template the student was trained on
        template = trained_with
    template = resolve_template(tokenizer, template)
    prompts = [prompt_ids(tokenizer, template, p.student_prompt()) for p in problems]
    if use_vllm is None:
        use_vllm = vllm_can_run(model_dir, gguf_file)
    budget = max_new_tokens + thinking_tokens
    if use_vllm:
        texts = _generate_vllm(model_dir, prompts, budget)
    else:
        texts = _generate_transformers(model_dir, tokenizer, prompts, budget, batch_size, gguf_file, log)
    rows = [scored_generation(problem, text) for problem, text in zip(problems, texts, strict=True)]
    by_dataset: dict[str, list[bool]] = {}
    for row in rows:
        by_dataset.setdefault(row["dataset"], []).append(row["correct"])
    if out_dir is not None:
        import polars as pl

        out_dir.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(rows).write_parquet(EvalDir(out_dir).predictions_path)
    correct = sum(r["correct"] for r in rows)
    report = EvalReport(
        model_dir,
        {d: sum(v) / len(v) for d, v in by_dataset.items()},
        len(rows),
        correct,
        sum(r["answer_source"] not in (None, "fallback") for r in rows),
        time.monotonic() - started,
        sum(not r["trace_closed"] for r in rows),
    )
    if out_dir is not None:
        EvalDir(out_dir).report_path.write_text(json.dumps(vars(report), indent=1) + "\n", encoding="utf-8")
    return report
