"""Other tools' formats: export to LLaMA-Factory and TRL; import the paper's released CoT files.

The paper (arXiv 2502.18001) trained with LLaMA-Factory from alpaca-style JSON files and a dataset_info.json;
its released files are named `<DATASET>_<teacher>_level<N>_ranked.json` (plain CoT),
`0_<DATASET>_<teacher>_level<N><BSM|RaR|SYM>.json` (formats), `*human*` and `*only_ans*` / `*onlyans*`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cotforge.builders.builddir import read_subsets, write_outputs, write_report
from cotforge.builders.parse import canonical_rationale, clean_rationale, extract_answer, split_steps
from cotforge.builders.verify import answers_match
from cotforge.recipes.sources.builtin import content_id
from cotforge.schemas.problem import CHOICE_LABELS, AnswerType
from cotforge.schemas.recipe import CoTFormat, PromptMode
from cotforge.schemas.record import BuildReport, CoTRecord, Rejection, RejectionReason

# ---- export ----------------------------------------------------------------------------------------------------

EXPORT_FORMATS = ("llama-factory", "trl-messages", "trl-prompt-completion")


def export(build_dir: Path, out_dir: Path, fmt: str, subsets: list[str] | None = None) -> list[Path]:
    """Write each subset in another tool's format; returns the files written."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    dataset_info: dict[str, Any] = {}
    for name, records in read_subsets(build_dir, subsets).items():
        if fmt == "llama-factory":
            path = out_dir / f"{name}.json"
            rows = [{"instruction": r.prompt, "input": "", "output": r.completion} for r in records]
            path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
            # The alpaca layout the paper's dataset_info.json used (prompt -> instruction, response -> output).
            dataset_info[name] = {
                "file_name": path.name,
                "columns": {"prompt": "instruction", "query": "input", "response": "output"},
            }
        else:
            path = out_dir / f"{name}.jsonl"
            with path.open("w", encoding="utf-8") as handle:
                for r in records:
                    if fmt == "trl-messages":
                        row: dict[str, Any] = {"messages": [m.model_dump() for m in r.messages]}
                    else:
                        row = {"prompt": r.prompt, "completion": r.completion}
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        written.append(path)
    if fmt == "llama-factory":
        info = out_dir / "dataset_info.json"
        info.write_text(json.dumps(dataset_info, ensure_ascii=False, indent=2), encoding="utf-8")
        written.append(info)
    return written


# ---- import of the paper's files -------------------------------------------------------------------------------

PAPER_TEACHERS = {
    "chatgpt": ("gpt-4o", "gpt-4o"),
    "gemini": ("gemini-1.5-flash", "gemini-1.5-flash"),
    "llama": ("llama-3-70b", "Meta-Llama-3-70B-Instruct"),
    "human": ("human", "human"),
}
PAPER_FORMATS = {"bsm": CoTFormat.subquestions, "rar": CoTFormat.rar, "sym": CoTFormat.symbolic}
# File prefix -> (data set, answer type). Only instruction/output files (MATH's files have other fields).
PAPER_DATASETS = {
    "svamp": ("svamp", AnswerType.number),
    "gsm8k": ("gsm8k", AnswerType.number),
    "gsm": ("gsm8k", AnswerType.number),
    "strategyqa": ("strategyqa", AnswerType.boolean),
    "stqa": ("strategyqa", AnswerType.boolean),
    "commonsenseqa": ("csqa", AnswerType.choice),
    "openbookqa": ("obqa", AnswerType.choice),
    "aqua": ("aqua", AnswerType.choice),
}
_LEVEL_FILE = re.compile(
    r"^(?:0_)?(?P<data>[A-Za-z0-9]+)_(?P<teacher>[A-Za-z]+)_level(?P<level>\d)(?P<fmt>BSM|RaR|SYM)?"
)
_INLINE_CHOICES = re.compile(r"^(?:Q: )?(?P<q>.*?) Answer [Cc]hoices: (?P<choices>.*)$", re.DOTALL)


@dataclass(frozen=True)
class PaperFile:
    path: Path
    dataset: str
    answer_type: AnswerType
    teacher: str
    teacher_model: str
    granularity: int | None
    fmt: CoTFormat


def _read_json(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".json")


def _dataset_of(name: str) -> tuple[str, AnswerType] | None:
    lower = name.lower().removeprefix("0_")
    key = next((k for k in sorted(PAPER_DATASETS, key=len, reverse=True) if lower.startswith(k)), None)
    return PAPER_DATASETS[key] if key else None


def classify(path: Path) -> PaperFile | str:
    """What a released file holds, or why it is not imported."""
    stem = _stem(path)
    lower = stem.lower()
    known = _dataset_of(stem)
    if known is None:
        return "not a data set this importer knows"
    dataset, answer_type = known
    if "only_ans" in lower or "onlyans" in lower:
        # The answer-only baseline: the gold answer alone, as level 0.
        return PaperFile(path, dataset, answer_type, "answer-only", "gold", 0, CoTFormat.cot)
    if "human" in lower:
        return PaperFile(path, dataset, answer_type, "human", "human", None, CoTFormat.cot)
    match = _LEVEL_FILE.match(stem)
    if match is None or match.group("teacher").lower() not in PAPER_TEACHERS:
        return "unrecognised file name"
    teacher, model = PAPER_TEACHERS[match.group("teacher").lower()]
    fmt = PAPER_FORMATS[match.group("fmt").lower()] if match.group("fmt") else CoTFormat.cot
    return PaperFile(path, dataset, answer_type, teacher, model, int(match.group("level")), fmt)


def _gold_answers(folder: Path) -> dict[tuple[str, str], str]:
    """(data set, instruction) -> gold, from the only-answer files."""
    gold = {}
    for path in sorted(folder.glob("*.json*")):
        lower = path.name.lower()
        known = _dataset_of(path.name)
        if known and ("only_ans" in lower or "onlyans" in lower):
            for row in _read_json(path):
                gold[(known[0], " ".join(row["instruction"].split()))] = str(row["output"]).strip()
    return gold


def _split_choices(instruction: str) -> tuple[str, list[str] | None]:
    match = _INLINE_CHOICES.match(instruction)
    if match is None:
        return instruction, None
    listed = match.group("choices")
    pairs = re.findall(r"\(?([A-J])[):]\s*(.*?)(?=,?\s*\(?[A-J][):]\s|$)", listed)
    if len(pairs) < 2 or [p[0] for p in pairs] != list(CHOICE_LABELS[: len(pairs)]):
        return instruction, None
    return match.group("q").strip(), [text.strip().rstrip(",") for _, text in pairs]


def _record(file: PaperFile, index: int, row: dict[str, Any], gold: str) -> CoTRecord | Rejection:
    question, choices = _split_choices(row["instruction"].strip())
    answer_type = file.answer_type if (choices or file.answer_type is not AnswerType.choice) else None
    origin = {
        "key": hashlib.sha256(f"{file.path.name}\0{index}\0{row['instruction']}".encode()).hexdigest()[:32],
        "problem_id": content_id(file.dataset, "train", " ".join(row["instruction"].split())),
        "dataset": file.dataset,
        "teacher": file.teacher,
        "teacher_model": file.teacher_model,
        "granularity": file.granularity,
        "format": file.fmt,
        "prompt_mode": PromptMode.unknown,
        "prompt_version": "arXiv:2502.18001",
        "sample_index": 0,
        "sampling": None,
    }
    text = clean_rationale(str(row.get("output") or ""))
    if answer_type is None:
        return Rejection(
            **origin, reason=RejectionReason.invalid_record, detail="choices not found in question", raw_response=text
        )
    parsed = extract_answer(text, answer_type, choices)
    if not text or parsed is None:
        return Rejection(**origin, reason=RejectionReason.unparseable, detail="no final answer", raw_response=text)
    rationale = canonical_rationale(text, parsed)
    try:
        return CoTRecord(
            **origin,
            source_split="train",
            question=question,
            choices=choices,
            gold_answer=gold,
            answer_type=answer_type,
            messages_sent=[],
            rationale=rationale,
            steps=split_steps(rationale, file.fmt),
            predicted_answer=parsed.answer,
            correct=answers_match(parsed.answer, gold, answer_type),
        )
    except ValidationError as error:
        return Rejection(**origin, reason=RejectionReason.invalid_record, detail=str(error)[:300], raw_response=text)


@dataclass
class ImportSummary:
    report: BuildReport
    accuracy: dict[str, float]  # per subset: share of records whose answer matches gold
    skipped: dict[str, str]  # file -> why not imported


def import_paper(folder: Path, out_dir: Path) -> ImportSummary:
    """The paper's released files in `folder` as a build directory, verified against the gold answers."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    gold = _gold_answers(folder)
    if not gold:
        raise ValueError(f"{folder}: no only-answer file with gold answers (e.g. SVAMP_only_ans.json)")
    records: list[CoTRecord] = []
    rejections: list[Rejection] = []
    skipped: dict[str, str] = {}
    for path in sorted(folder.glob("*.json*")):
        if _stem(path) == "dataset_info":
            continue
        file = classify(path)
        if isinstance(file, str):
            skipped[path.name] = file
            continue
        for index, row in enumerate(_read_json(path)):
            answer = gold.get((file.dataset, " ".join(str(row.get("instruction", "")).split())))
            if answer is None:
                skipped.setdefault(path.name, "")
                continue
            made = _record(file, index, row, answer)
            (records if isinstance(made, CoTRecord) else rejections).append(made)
    subsets = write_outputs(out_dir, records, rejections)
    correct: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        correct[record.subset].append(record.correct)
    report = BuildReport(
        recipe=f"import of {folder.name}",
        requested=len(records) + len(rejections),
        accepted=len(records),
        rejected=dict(Counter(r.reason for r in rejections)),
        failed=0,
        subsets=subsets,
    )
    write_report(out_dir, report)
    accuracy = {name: sum(values) / len(values) for name, values in sorted(correct.items())}
    return ImportSummary(report, accuracy, {k: v for k, v in skipped.items() if v})
