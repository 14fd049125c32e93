"""The student as `cotforge score` sees it: loaded in fp32, its weights digested, its template resolved,
so a score is found again only for the very same weights and rendering (quality.rsr.ScoredBy). The trainer and
`cotforge export` load it this way too, for a `--select` that ranks records by the student's scores."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from cotforge.quality.filters import QualityFilter
from cotforge.quality.rsr import ScoredBy
from cotforge.quality.selection import Scorer
from cotforge.schemas.record import ReasoningView
from cotforge.train.config import TrainConfig, model_label, split_gguf_path
from cotforge.train.data import resolve_template
from cotforge.train.student import compute_dtype, load_student, load_tokenizer


def weights_digest(model: Any) -> str:
    """A digest of every weight's name, dtype, shape and bytes: other weights under the same name never reuse a
    score."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


@dataclass
class LoadedScorer:
    """A student loaded for scoring (not yet on its device), its tokenizer, and whose scores it makes."""

    model: Any
    tokenizer: Any
    device: torch.device  # where it scores: the GPU when there is one
    compute: torch.dtype  # the dtype the device computes in
    scorer: Scorer


def load_scorer(
    student: str, gguf_file: str | None, template: str, reasoning: ReasoningView, max_length: int
) -> LoadedScorer:
    """`student` (a Hub id, a folder, or a .gguf path) loaded as `cotforge score` loads it. Raises StudentError,
    ValueError (a template the tokenizer lacks)."""
    model_name, gguf_file = split_gguf_path(student, gguf_file)
    tokenizer = load_tokenizer(model_name, gguf_file)
    resolved = resolve_template(tokenizer, template)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    compute = compute_dtype(device)
    model = load_student(model_name, gguf_file, device, torch.float32, compute=compute, place=False)
    scored_by = ScoredBy(
        student=model_label(model_name, gguf_file),
        weights_digest=weights_digest(model),
        template=resolved,
        reasoning=reasoning.value,
        max_length=max_length,
    )
    source = str(Path(model_name) / gguf_file) if gguf_file else model_name
    return LoadedScorer(model, tokenizer, device, compute, Scorer(source, scored_by))


def student_scorer(
    student: str, gguf_file: str | None, template: str, reasoning: ReasoningView, max_length: int
) -> Scorer:
    """Whose scores a `--select` on `student` reads (the model is loaded for its digest, then let go)."""
    return load_scorer(student, gguf_file, template, reasoning, max_length).scorer


def run_quality_filter(config: TrainConfig) -> QualityFilter:
    """A training run's filters and selection; a selection by score reads the scores of this very student and
    rendering (the model is loaded for its weights' digest)."""
    quality, student, rendering = config.data.quality_filter(), config.student, config.rendering
    if quality.select is None or not quality.select.needs_scores:
        return quality
    scorer = student_scorer(
        student.model, student.gguf_file, rendering.template, rendering.reasoning, rendering.max_length
    )
    return replace(quality, scorer=scorer)
