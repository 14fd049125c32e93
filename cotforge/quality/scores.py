"""The per-record scores of a build directory: one Parquet file (BuildDir.scores_path), a row per record and scorer
(ScoredBy). A run writes each batch's rows as a file of their own in BuildDir.score_parts_dir, atomically, and
merges them into the one file when it ends: a kill loses at most the batch in flight, and the next run merges what
the killed one left."""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl

from cotforge.corpus import BuildDir, BuildDirError
from cotforge.quality.rsr import RecordScore, ScoredBy
from cotforge.safety.atomic import atomic_path

SCORED_BY_COLUMNS: dict[str, pl.DataType] = {
    "student": pl.Utf8,
    "weights_digest": pl.Utf8,
    "template": pl.Utf8,
    "reasoning": pl.Utf8,
    "max_length": pl.Int64,
}
COLUMNS: dict[str, pl.DataType] = {
    "key": pl.Utf8,
    "subset": pl.Utf8,
    **SCORED_BY_COLUMNS,
    "tokens": pl.Int64,
    "mean_surprisal": pl.Float64,
    "mean_rank": pl.Float64,
    "rsr": pl.Float64,
}
IDENTITY = ["key", *SCORED_BY_COLUMNS]  # a row per record and scorer: a score is never made twice
PART_GLOB = "part-*.parquet"  # atomic_path's temporary names start with a dot, so no half-written part matches


class ScoreStore:
    """The scores of one build directory; its writer holds the directory's lock."""

    def __init__(self, directory: BuildDir) -> None:
        self.directory = directory

    def _parts(self) -> list[Path]:
        folder = self.directory.score_parts_dir
        return sorted(folder.glob(PART_GLOB)) if folder.is_dir() else []

    def _files(self) -> list[Path]:
        main = self.directory.scores_path
        return ([main] if main.exists() else []) + self._parts()

    def _read(self, path: Path) -> pl.DataFrame:
        try:
            frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as error:
            raise BuildDirError(f"{path}: not a scores file ({str(error).splitlines()[0]})") from None
        missing = [name for name in COLUMNS if name not in frame.columns]
        if missing:
            raise BuildDirError(f"{path}: not a scores file (no column {', '.join(missing)})")
        try:
            return frame.select(pl.col(name).cast(kind) for name, kind in COLUMNS.items())
        except pl.exceptions.PolarsError as error:
            raise BuildDirError(f"{path}: a column has the wrong type ({str(error).splitlines()[0]})") from None

    def _all(self) -> pl.DataFrame:
        frames = [self._read(path) for path in self._files()]
        if not frames:
            return pl.DataFrame(schema=COLUMNS)
        return pl.concat(frames).unique(subset=IDENTITY, keep="last", maintain_order=True)

    def read(self, scored_by: ScoredBy) -> dict[str, RecordScore]:
        """The scores made by `scored_by`, by record key."""
        mine = self._all().filter(
            pl.all_horizontal(pl.col(name) == value for name, value in scored_by.model_dump().items())
        )
        return {
            row["key"]: RecordScore(**{name: row[name] for name in RecordScore.model_fields})
            for row in mine.iter_rows(named=True)
        }

    def add(self, scored_by: ScoredBy, scores: dict[str, tuple[str, RecordScore]]) -> None:
        """One batch's scores (key -> (subset, score)), as a part file of their own."""
        rows = [
            {"key": key, "subset": subset, **scored_by.model_dump(), **score.model_dump()}
            for key, (subset, score) in scores.items()
        ]
        name = f"part-{time.time_ns():020d}-{os.getpid()}.parquet"
        with atomic_path(self.directory.score_parts_dir / name) as partial:
            pl.DataFrame(rows, schema=COLUMNS).write_parquet(partial)

    def merge(self) -> None:
        """The parts into the one file (replaced atomically), then the parts removed: a kill between the two leaves
        parts the file already holds, which the next merge drops as duplicates."""
        parts = self._parts()
        if not parts:
            return
        merged = self._all()
        with atomic_path(self.directory.scores_path) as partial:
            merged.write_parquet(partial)
        for part in parts:
            part.unlink()
