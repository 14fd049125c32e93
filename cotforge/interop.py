"""Other tools' formats: export a build to LLaMA-Factory (the paper trained with it) and to TRL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cotforge.corpus import BuildDir
from cotforge.quality.filters import QualityFilter
from cotforge.safety.atomic import atomic_path, atomic_write_text
from cotforge.safety.lock import directory_lock
from cotforge.schemas.record import CoTRecord, ReasoningView

# ---- export ----------------------------------------------------------------------------------------------------

EXPORT_FORMATS = ("llama-factory", "trl-messages", "trl-prompt-completion")


def export(
    build_dir: Path,
    out_dir: Path,
    fmt: str,
    subsets: list[str] | None = None,
    reasoning: ReasoningView = ReasoningView.keep,
    quality: QualityFilter | None = None,
) -> list[Path]:
    """Write each subset in another tool's format; returns the files written. A reasoning teacher's trace, kept,
    goes where each tool reads one: LLaMA-Factory and TRL's prompt/completion in `<think>` tags before the rationale
    (LLaMA-Factory's thinking templates split them there); TRL's messages as the assistant turn's
    `reasoning_content`, which chat templates that render traces (Qwen3's) put in their own thinking block.
    `quality` keeps the records that pass its filters (pass rate, near-duplicates, the judge's bounds), then its
    selection (`--select`)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    with directory_lock(build_dir, "export", create=False):  # not while a build rewrites its subsets
        directory = BuildDir(build_dir)
        selected = directory.read_subsets(subsets)  # read (and validated) before anything is written
        if quality is not None and quality.active:
            selected = quality.apply_in(directory, selected)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: is a file; --out must be a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    dataset_info: dict[str, Any] = {}
    for name, records in selected.items():
        if fmt == "llama-factory":
            path = out_dir / f"{name}.json"
            rows = [{"instruction": r.prompt, "input": "", "output": r.completion_for(reasoning)} for r in records]
            atomic_write_text(path, json.dumps(rows, ensure_ascii=False, indent=1))
            # The alpaca layout the paper's dataset_info.json used (prompt -> instruction, response -> output).
            dataset_info[name] = {
                "file_name": path.name,
                "columns": {"prompt": "instruction", "query": "input", "response": "output"},
            }
        else:
            path = out_dir / f"{name}.jsonl"
            with atomic_path(path) as partial, partial.open("w", encoding="utf-8") as handle:
                for r in records:
                    if fmt == "trl-messages":
                        row: dict[str, Any] = {"messages": trl_messages(r, reasoning)}
                    else:
                        row = {"prompt": r.prompt, "completion": r.completion_for(reasoning)}
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        written.append(path)
    if fmt == "llama-factory":
        info = out_dir / "dataset_info.json"
        atomic_write_text(info, json.dumps(dataset_info, ensure_ascii=False, indent=2))
        written.append(info)
    return written


def trl_messages(record: CoTRecord, reasoning: ReasoningView) -> list[dict[str, str]]:
    """The record's chat, its assistant turn carrying the kept trace as `reasoning_content`."""
    messages = [m.model_dump() for m in record.messages]
    if reasoning is ReasoningView.keep and record.reasoning:
        messages[-1]["reasoning_content"] = record.reasoning
    return messages
