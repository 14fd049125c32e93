"""Score a build directory's records under a student: what is already scored by the same student (weights) and
rendering is read back, the rest is rendered as the trainer renders it, scored in length-sorted batches with no
gradient, kept a batch at a time, and summed up per subset into cotforge_stats.json."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cotforge.corpus import BuildDir, BuildDirError
from cotforge.quality.rsr import RecordScore, ScoredBy, SubsetSuitability, record_score, subset_suitability
from cotforge.quality.scores import ScoreStore
from cotforge.safety.lock import directory_lock
from cotforge.schemas.record import CoTRecord, ReasoningView
from cotforge.suitability.tokens import score_batch
from cotforge.train.batching import collate_padded
from cotforge.train.config import Rendering
from cotforge.train.data import Example, fitted, render
from cotforge.train.scorer import load_scorer

TRAINER = Rendering.model_fields  # the rendering settings default to the trainer's


@dataclass(frozen=True)
class ScoreProgress:
    """Where a scoring run stands, after each batch."""

    student: str
    total: int  # records this run scores
    done: int
    tokens: int  # completion tokens scored so far
    elapsed_s: float
    finished: bool = False

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0


ScoreCallback = Callable[[ScoreProgress], None]


@dataclass
class ScoreReport:
    directory: BuildDir  # the scores are in its scores_path, the subsets' in its stats_path
    scored_by: ScoredBy
    scored: int  # records scored by this run
    reused: int  # records already scored by the same student and rendering
    tokens: int  # completion tokens this run scored
    wall_time_s: float
    subsets: dict[str, SubsetSuitability] = field(default_factory=dict)
    truncated: int = 0  # records this run scored whose completion was cut at max_length

    @property
    def not_scored(self) -> int:
        return sum(s.not_scored for s in self.subsets.values())


@dataclass(frozen=True)
class _Pending:
    key: str
    subset: str
    example: Example
    truncated: bool


def _pending(
    subsets: dict[str, list[CoTRecord]],
    done: dict[str, RecordScore],
    tokenizer: Any,
    template: str,
    reasoning: ReasoningView,
    max_length: int,
) -> tuple[list[_Pending], Counter[str]]:
    """The records not yet scored, rendered as the trainer renders them; and per subset the records whose prompt
    alone fills max_length (not scored, as the trainer drops them)."""
    pending: list[_Pending] = []
    too_long: Counter[str] = Counter()
    for name, records in subsets.items():
        for record in records:
            if record.key in done:
                continue
            head, tail = render(tokenizer, template, record.prompt, record.completion_for(reasoning))
            example = fitted(head, tail, max_length)
            if example is None:
                too_long[name] += 1
                continue
            pending.append(_Pending(record.key, name, example, len(example.input_ids) < len(head) + len(tail)))
    return pending, too_long


def _batches(pending: list[_Pending], batch_size: int) -> Iterator[list[_Pending]]:
    """Batches of similar lengths, longest first: little padding, and a batch too large for memory fails at once."""
    ordered = sorted(pending, key=lambda p: -len(p.example.input_ids))
    for start in range(0, len(ordered), batch_size):
        yield ordered[start : start + batch_size]


def score_build(
    directory: BuildDir,
    student: str,
    *,
    gguf_file: str | None = None,
    subsets: list[str] | None = None,
    template: str = TRAINER["template"].default,
    reasoning: ReasoningView = TRAINER["reasoning"].default,
    max_length: int = TRAINER["max_length"].default,
    batch_size: int = 16,
    progress: ScoreCallback | None = None,
) -> ScoreReport:
    """Score the accepted records of `subsets` (default: all) under `student`; see the module's docstring. Raises
    BuildDirError (a missing subset, a damaged file), StudentError, ValueError (a template the tokenizer lacks)."""
    if not directory.is_build():
        raise BuildDirError(f"{directory.path}: not a build directory (no subsets/ folder)")
    records = directory.read_subsets(subsets)
    loaded = load_scorer(student, gguf_file, template, reasoning, max_length)
    tokenizer, device, compute = loaded.tokenizer, loaded.device, loaded.compute
    scored_by = loaded.scorer.scored_by
    model = loaded.model.to(device).eval()
    pad = tokenizer.pad_token_id
    started = time.monotonic()
    with directory_lock(directory.path, "score"):
        store = ScoreStore(directory)
        done = store.read(scored_by)
        reused = sum(record.key in done for rows in records.values() for record in rows)
        pending, too_long = _pending(records, done, tokenizer, scored_by.template, reasoning, max_length)
        report = ScoreReport(directory, scored_by, scored=0, reused=reused, tokens=0, wall_time_s=0.0)

        def tell(finished: bool = False) -> None:
            if progress is not None:
                now = time.monotonic() - started
                progress(ScoreProgress(scored_by.student, len(pending), report.scored, report.tokens, now, finished))

        try:
            for batch in _batches(pending, batch_size):
                sums = score_batch(model, collate_padded([p.example for p in batch], pad).to(device), compute)
                scores = {
                    p.key: (p.subset, record_score(s.tokens, s.surprisal, s.rank))
                    for p, s in zip(batch, sums, strict=True)
                }
                store.add(scored_by, scores)
                done |= {key: score for key, (_, score) in scores.items()}
                report.scored += len(batch)
                report.tokens += sum(s.tokens for s in sums)
                report.truncated += sum(p.truncated for p in batch)
                tell()
        finally:  # what was scored is kept, however the run ends
            store.merge()
        tell(finished=True)
        report.wall_time_s = time.monotonic() - started
        report.subsets = {
            name: subset_suitability(scored_by, (done[r.key] for r in rows if r.key in done), too_long[name])
            for name, rows in records.items()
        }
        _write_stats(directory, records, report.subsets)
    return report


def _write_stats(
    directory: BuildDir, records: dict[str, list[CoTRecord]], suitability: dict[str, SubsetSuitability]
) -> None:
    """Each subset's scores into cotforge_stats.json, beside the other students' (one entry per student and
    rendering); a subset the file lacks gets its statistics made first."""
    from cotforge.dataset_cards.stats import SubsetStats, corpus_stats

    saved = directory.read_stats() or {}
    missing = {name: rows for name, rows in records.items() if name not in saved}
    stats: dict[str, Any] = dict(saved)
    if missing:
        made = corpus_stats(missing, directory.read_rejections())
        stats |= {name: value.model_dump(mode="json") for name, value in made.items()}
    for name, scores in suitability.items():
        try:
            entry = SubsetStats.model_validate(stats[name])
        except ValueError as error:
            raise BuildDirError(f"{directory.stats_path}: subset {name} cannot be read ({error})") from None
        others = [s for s in entry.suitability if s.scored_by != scores.scored_by]
        stats[name] = entry.model_copy(update={"suitability": [*others, scores]}).model_dump(mode="json")
    directory.write_stats(stats)
