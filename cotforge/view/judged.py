"""The judge's verdicts as the viewer shows them: each record's score and reason per rubric, read from judge.sqlite
while a judge may write it, else from judge_scores.parquet (a pulled build has only that), and the browse page's
judge filter ("faithful <= 2")."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cotforge.corpus import BuildDir
from cotforge.judging.store import latest_scores
from cotforge.schemas.judge import JudgeScore

_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
    "=": operator.eq,
}
_CONDITION = re.compile(r"^\s*([a-z][a-z0-9_-]*)\s*(<=|>=|==|<|>|=)\s*(-?\d+)\s*$")
_HINT = "a rubric, one of <= < = > >=, and a whole score, e.g. faithful <= 2"


@dataclass(frozen=True)
class Verdict:
    score: int
    reason: str


@dataclass(frozen=True)
class JudgeCondition:
    """A judge filter: records whose score under `rubric` compares so with `score` (a record without a score under
    it never matches)."""

    rubric: str
    comparison: str
    score: int

    @classmethod
    def parse(cls, written: str) -> JudgeCondition:
        """ValueError naming the filter when it is not RUBRIC OP SCORE."""
        found = _CONDITION.match(written)
        if not found:
            raise ValueError(f"judge filter {written!r}: write {_HINT}")
        return cls(found[1], found[2], int(found[3]))

    def holds(self, verdict: Verdict) -> bool:
        return _COMPARISONS[self.comparison](verdict.score, self.score)


@dataclass
class Verdicts:
    """Record key -> rubric -> its latest verdict; `rubrics` in a stable order (empty for a build never judged)."""

    by_key: dict[str, dict[str, Verdict]] = field(default_factory=dict)
    scores: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (subset, rubric) -> its scores

    @classmethod
    def of(cls, scores: Iterable[JudgeScore]) -> Verdicts:
        found = cls()
        for score in scores:
            found.by_key.setdefault(score.key, {})[score.rubric] = Verdict(score.score, score.reason)
            found.scores.setdefault((score.subset, score.rubric), []).append(score.score)
        return found

    @property
    def rubrics(self) -> list[str]:
        return sorted({rubric for verdicts in self.by_key.values() for rubric in verdicts})

    def keys_where(self, condition: JudgeCondition) -> tuple[str, ...]:
        return tuple(
            key
            for key, verdicts in self.by_key.items()
            if condition.rubric in verdicts and condition.holds(verdicts[condition.rubric])
        )


class VerdictSource:
    """A build's verdicts, read again only when the file they come from changed (a judge writing beside the
    viewer shows its new scores at the next request)."""

    def __init__(self, build: BuildDir) -> None:
        self.build = build
        self._seen: tuple[object, ...] | None = None
        self._verdicts = Verdicts()

    def _files(self) -> list[Path]:
        store = self.build.judge_store_path
        if store.exists():  # a WAL journal takes the writes before the database file does
            return [store, store.with_name(store.name + "-wal")]
        return [self.build.judge_scores_path]

    def current(self) -> Verdicts:
        """BuildDirError when the file cannot be read."""
        files = self._files()
        seen = tuple(_stamp(path) for path in files)
        if seen != self._seen:
            if not files[0].exists():
                self._verdicts = Verdicts()
            elif files[0] == self.build.judge_store_path:
                self._verdicts = Verdicts.of(latest_scores(files[0]))
            else:
                self._verdicts = Verdicts.of(self.build.read_judge_scores())
            self._seen = seen
        return self._verdicts


def _stamp(path: Path) -> tuple[int, int] | None:
    """A file's modification time and size; None where it is absent (a WAL journal goes when its writer closes,
    so it may go between a look and a stat)."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_mtime_ns, found.st_size
