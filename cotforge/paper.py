"""Import the CoT files released with arXiv 2502.18001 (EIT-NLP/Distilling-CoT-Reasoning) as a build directory.

The release names its files irregularly (its `dataset_info.json` is the list): `SVAMP_ChatGPT_level1_ranked.json`,
`commonsenseQA_chatgpt_level_1_ranked.json`, `math_mix_level3.json` (GPT-4o), `0_aqua_chatgpt_level5Sym.json`,
`openbookqa_chatgpt_symbolic_level3_ranked.json`, `openbookQA_ChatGPT_0_shot_with_gt_ranked.json`, `*human*`,
`*only_ans*` / `*onlyans*` (the answer-only baseline: level 0). Every row becomes a CoTRecord verified against the
gold answer, or a Rejection that says why; nothing is dropped without a count.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cotforge.answers import (
    CHOICE_LABELS,
    AnswerType,
    UnusableGold,
    answers_match,
    extract_answer,
    last_boxed,
    normalise_gold,
    repair_control_chars,
)
from cotforge.builders.parse import canonical_rationale, clean_rationale, split_steps
from cotforge.corpus import BuildDir, group_by_subset
from cotforge.dataset_cards import write_finished
from cotforge.recipes.sources.builtin import content_id
from cotforge.safety.atomic import atomic_folder
from cotforge.safety.lock import LOCK_FILE, directory_lock
from cotforge.schemas.recipe import CoTFormat, PromptMode
from cotforge.schemas.record import BuildReport, CoTRecord, Rejection, RejectionReason

PAPER_TEACHERS = {
    "chatgpt": ("gpt-4o", "gpt-4o"),
    "gemini": ("gemini-1.5-flash", "gemini-1.5-flash"),
    "llama": ("llama-3-70b", "Meta-Llama-3-70B-Instruct"),
}
# File-name prefix (lower case, longest first wins) -> data set.
PAPER_DATASETS = {
    "svamp": "svamp",
    "gsm8k": "gsm8k",
    "gsm": "gsm8k",
    "aqua": "aqua",
    "auqa": "aqua",
    "math_mix": "math",
    "math": "math",
    "commonsenseqa": "csqa",
    "csqa": "csqa",
    "cqa": "csqa",
    "ecqa": "csqa",
    "openbookqa": "obqa",
    "obqa": "obqa",
    "strategyqa": "strategyqa",
    "stqa": "strategyqa",
}
ANSWER_TYPES = {
    "svamp": AnswerType.number,
    "gsm8k": AnswerType.number,
    "aqua": AnswerType.choice,
    "math": AnswerType.expression,
    "csqa": AnswerType.choice,
    "obqa": AnswerType.choice,
    "strategyqa": AnswerType.boolean,
}
_FORMATS = {"bsm": CoTFormat.subquestions, "rar": CoTFormat.rar, "sym": CoTFormat.symbolic}
_FORMAT_TAG = re.compile(r"(?<![a-z])(bsm|rar|sym)(?:bolic)?(?![a-z])")
_LEVEL = re.compile(r"level_?(\d)")
_INLINE_CHOICES = re.compile(r"^(?:Q: )?(?P<q>.*?)\s*Answer [Cc]hoices:\s*(?P<choices>.*)$", re.DOTALL)
ANSWER_ONLY = "answer-only"


@dataclass(frozen=True)
class PaperFile:
    """One view of a released file: which data set, teacher, level and format, and which field holds the text."""

    path: Path
    dataset: str
    teacher: str
    teacher_model: str
    granularity: int | None
    fmt: CoTFormat
    response_field: str = "output"
    prompt_mode: PromptMode = PromptMode.unknown

    @property
    def answer_type(self) -> AnswerType:
        return ANSWER_TYPES[self.dataset]

    @property
    def is_gold_source(self) -> bool:
        return self.teacher in (ANSWER_ONLY, "human")


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".json")


def dataset_of(name: str) -> str | None:
    lower = name.lower().removeprefix("0_")
    key = next((k for k in sorted(PAPER_DATASETS, key=len, reverse=True) if lower.startswith(k)), None)
    return PAPER_DATASETS[key] if key else None


def classify(path: Path) -> list[PaperFile] | str:
    """The views a released file holds (MATH's human file holds two: the solution and the bare answer), or why
    it is not imported."""
    stem = _stem(path)
    lower = stem.lower()
    dataset = dataset_of(stem)
    if dataset is None:
        return "not a data set of the paper"
    if "only_ans" in lower or "onlyans" in lower:
        return [PaperFile(path, dataset, ANSWER_ONLY, "gold", 0, CoTFormat.cot)]
    if "human" in lower or lower.startswith("ecqa"):
        human = PaperFile(path, dataset, "human", "human", None, CoTFormat.cot)
        if dataset == "math":  # the paper's math_onlyans reads the same file's `output` column
            return [
                PaperFile(path, dataset, "human", "human", None, CoTFormat.cot, response_field="solution"),
                PaperFile(path, dataset, ANSWER_ONLY, "gold", 0, CoTFormat.cot),
            ]
        return [human]
    teacher_key = next((t for t in PAPER_TEACHERS if t in lower), "chatgpt" if lower.startswith("math_mix") else None)
    if teacher_key is None:
        return "no teacher (chatgpt, gemini or llama) in the file name"
    teacher, model = PAPER_TEACHERS[teacher_key]
    response = f"{teacher_key}_output" if dataset == "math" else "output"
    if "0_shot" in lower:  # zero-shot GPT-4o CoT, with or without the gold answer in the prompt
        blind = "without_gt" in lower
        label = f"{teacher}-zero-shot" + ("" if blind else "-gold")
        mode = PromptMode.blind if blind else PromptMode.gold_hinted
        return [PaperFile(path, dataset, label, model, None, CoTFormat.cot, response, mode)]
    level = _LEVEL.search(lower)
    if level is None:
        return "no granularity level in the file name"
    tag = _FORMAT_TAG.search(lower.removeprefix("0_").split(teacher_key, 1)[-1])
    fmt = _FORMATS[tag.group(1)] if tag else CoTFormat.cot
    return [PaperFile(path, dataset, teacher, model, int(level.group(1)), fmt, response)]


def read_rows(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        rows = json.load(handle)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path}: expected a JSON list of objects")
    return rows


def split_choices(instruction: str) -> tuple[str, list[str] | None]:
    """'Q: ... Answer choices: A: x, B: y' or '... Answer Choices: (A) 5 (B) 8' -> question and choice texts.
    Labels are found in order (A, then B after it, ...), so choice texts may hold letters and doubled labels
    ('(A) A) 5') lose the copy."""
    match = _INLINE_CHOICES.match(instruction)
    if match is None:
        return instruction, None
    listed = match.group("choices")
    form = r"\({}\)" if re.match(r"\s*\(A\)", listed) else r"(?:^|(?<=[\s,])){}[:)]"
    cuts: list[tuple[int, int]] = []
    position = 0
    for label in CHOICE_LABELS:
        found = re.compile(form.format(label)).search(listed, position)
        if found is None:
            break
        cuts.append((found.start(), found.end()))
        position = found.end()
    if len(cuts) < 2:
        return instruction, None
    ends = [start for start, _ in cuts[1:]] + [len(listed)]
    texts = []
    for label, (_, begin), end in zip(CHOICE_LABELS, cuts, ends, strict=False):
        text = listed[begin:end].strip().rstrip(",").strip()
        texts.append(re.sub(rf"^\(?{label}\)\s*", "", text))
    return match.group("q").strip(), texts


def _question_key(dataset: str, question: str) -> tuple[str, str]:
    return dataset, " ".join(question.split())


def _prompt(row: dict[str, Any]) -> str:
    return str(row.get("instruction") or row.get("problem") or "")


def _math_gold(row: dict[str, Any]) -> str:
    """MATH gold from the row's `output`; where the release cut it at the first '}' ('\\frac{1}'), the solution's
    \\boxed{} answer that it starts with."""
    gold = repair_control_chars(str(row.get("output") or "")).strip()
    try:
        return normalise_gold(gold, AnswerType.expression)
    except UnusableGold:
        boxed = last_boxed(repair_control_chars(str(row.get("solution") or "")))
        if boxed and gold and boxed.startswith(gold):
            return boxed
        raise


class GoldAnswers:
    """Gold answers by (data set, question), from the answer-only and human files (AQuA: the human file first,
    as its answer-only file is noisy)."""

    def __init__(self, files: list[PaperFile]) -> None:
        self._gold: dict[tuple[str, str], str] = {}
        for file in sorted(files, key=self._later_source):
            if file.dataset == "math":
                continue  # every MATH row carries its own gold
            for row in read_rows(file.path):
                key = _question_key(file.dataset, _prompt(row))
                if key in self._gold:
                    continue
                parsed = extract_answer(str(row.get("output") or ""), file.answer_type, split_choices(key[1])[1])
                if parsed is not None:
                    self._gold[key] = parsed.answer

    @staticmethod
    def _later_source(file: PaperFile) -> bool:
        """False for the file whose gold wins: the answer-only file, but AQuA's human file (its answer-only one
        holds 'C.', 'Option C' and free text)."""
        human_first = file.dataset == "aqua"
        return (file.teacher == "human") != human_first

    def __len__(self) -> int:
        return len(self._gold)

    def datasets(self) -> set[str]:
        return {dataset for dataset, _ in self._gold}

    def find(self, file: PaperFile, row: dict[str, Any]) -> str | None:
        if file.dataset == "math":
            return _math_gold(row)
        return self._gold.get(_question_key(file.dataset, _prompt(row)))


def _record(file: PaperFile, index: int, row: dict[str, Any], gold: GoldAnswers) -> CoTRecord | Rejection:
    instruction = _prompt(row).strip()
    question, choices = split_choices(instruction)
    origin = {
        "key": hashlib.sha256(f"{file.path.name}\0{file.response_field}\0{index}\0{instruction}".encode()).hexdigest()[
            :32
        ],
        "problem_id": content_id(file.dataset, "train", " ".join(instruction.split())),
        "dataset": file.dataset,
        "teacher": file.teacher,
        "teacher_model": file.teacher_model,
        "granularity": file.granularity,
        "format": file.fmt,
        "prompt_mode": file.prompt_mode,
        "prompt_version": "arXiv:2502.18001",
        "sample_index": 0,
        "sampling": None,
    }
    text = clean_rationale(str(row.get(file.response_field) or ""))
    if file.dataset == "math" and file.teacher == ANSWER_ONLY:
        with contextlib.suppress(UnusableGold):  # MATH's answer-only target is its gold, sometimes cut short
            text = _math_gold(row)

    def reject(reason: RejectionReason, detail: str) -> Rejection:
        return Rejection(**origin, reason=reason, detail=detail, raw_response=text)

    if file.answer_type is AnswerType.choice and choices is None:
        return reject(RejectionReason.invalid_record, "answer choices not found in the question")
    if file.response_field not in row:
        others = [k for k in row if k.endswith("_output")]
        return reject(RejectionReason.empty, f"no {file.response_field} in the row (it has {', '.join(others)})")
    if not text:
        return reject(RejectionReason.empty, f"{file.response_field} is empty")
    try:
        gold_answer = gold.find(file, row)
    except UnusableGold as error:
        return reject(RejectionReason.unusable_gold, str(error))
    if gold_answer is None:
        return reject(RejectionReason.no_gold, "the question is in no gold file")
    try:
        gold_answer = normalise_gold(gold_answer, file.answer_type, choices)
    except UnusableGold as error:
        return reject(RejectionReason.unusable_gold, str(error))
    parsed = extract_answer(text, file.answer_type, choices)
    if parsed is None:
        return reject(RejectionReason.unparseable, "no final answer")
    rationale = canonical_rationale(text, parsed)
    try:
        return CoTRecord(
            **origin,
            source_split="train",
            question=question,
            choices=choices,
            gold_answer=gold_answer,
            answer_type=file.answer_type,
            messages_sent=[],
            rationale=rationale,
            steps=split_steps(rationale, file.fmt),
            predicted_answer=parsed.answer,
            answer_source=parsed.source,
            correct=answers_match(parsed.answer, gold_answer, file.answer_type, choices),
        )
    except ValidationError as error:
        return reject(RejectionReason.invalid_record, str(error)[:300])


@dataclass
class FileSummary:
    """What became of one released file: nothing is dropped without being counted here."""

    file: str
    view: str  # teacher, level and format, e.g. 'gpt-4o g5 cot' ('' for a skipped file)
    rows: int = 0
    imported: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    no_gold: list[str] = field(default_factory=list)  # questions in no gold file (also counted in rejected)
    skipped: str | None = None


@dataclass
class ImportSummary:
    report: BuildReport
    accuracy: dict[str, float]  # per subset: share of records whose answer matches gold
    files: list[FileSummary]


def import_paper(folder: Path, out_dir: Path) -> ImportSummary:
    """The paper's released files in `folder` as a build directory, verified against the gold answers."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    views: list[PaperFile] = []
    summaries: list[FileSummary] = []
    for path in sorted(folder.glob("*.json*")):
        if _stem(path) == "dataset_info":
            continue
        found = classify(path)
        if isinstance(found, str):
            summaries.append(FileSummary(path.name, "", skipped=found))
        else:
            views += found
    gold = GoldAnswers([v for v in views if v.is_gold_source])
    if not len(gold) and any(v.dataset != "math" for v in views):
        raise ValueError(f"{folder}: no answer-only or human file with gold answers (e.g. SVAMP_only_ans.json)")
    records: list[CoTRecord] = []
    rejections: list[Rejection] = []
    for file in views:
        level = "" if file.granularity is None else f" g{file.granularity}"
        summary = FileSummary(file.path.name, f"{file.teacher}{level} {file.fmt.value}")
        reasons: Counter[str] = Counter()
        for index, row in enumerate(read_rows(file.path)):
            summary.rows += 1
            made = _record(file, index, row, gold)
            if isinstance(made, CoTRecord):
                records.append(made)
                summary.imported += 1
            else:
                rejections.append(made)
                reasons[made.reason.value] += 1
                if made.reason is RejectionReason.no_gold:
                    summary.no_gold.append(_prompt(row)[:120])
        summary.rejected = dict(reasons)
        summaries.append(summary)
    # Into a temporary folder that replaces out_dir when complete: a killed import leaves the old folder.
    with directory_lock(out_dir, "import-paper"), atomic_folder(out_dir, keep=(LOCK_FILE,)) as partial:
        build_dir = BuildDir(partial)
        report = write_finished(build_dir, f"import of {folder.name}", records, rejections)
    accuracy = {
        name: sum(r.correct for r in rows) / len(rows) for name, rows in group_by_subset(records, rejections).items()
    }
    return ImportSummary(report, accuracy, summaries)
