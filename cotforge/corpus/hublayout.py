"""The layout of a corpus's dataset repo on the Hub: the one place that names its files. Push writes it, pull and the
card's checks read it, the card points at it.

data/<subset>/<split>-NNNNN-of-NNNNN.parquet   a subset's records; the rejected answers in data/rejected/
README.md                                      the card: its YAML header's configs name the data files
.huggingface.yaml                              YAML beside the card: `datasets` reads its configs too (pull checks it)
recipe.yaml, build_report.json                 the build directory's own, as they are
cotforge_stats.json                            per-subset statistics, merged across pushes
assets/length_by_level.png                     the card's plot
LICENSE.md                                     the sources' licences, when they differ
judge_scores.parquet, judge_rejections.parquet the judge's verdicts (`cotforge judge`), a row per record and rubric
suitability.parquet                            per-record scores under students (`cotforge score`)

The last three are the build directory's files of the same names. Each row names its subset, so a push replaces the
rows of the subsets it pushes and keeps the others' (as it does for data/), and a pull takes those of the subsets
it pulls.
"""

from __future__ import annotations

from typing import ClassVar

from cotforge.corpus.builddir import (
    JUDGE_REJECTIONS_FILE,
    JUDGE_SCORES_FILE,
    RECIPE_FILE,
    REPORT_FILE,
    SCORES_FILE,
    STATS_FILE,
)


class HubLayout:
    """Where each part of a corpus lies in its dataset repo (paths inside the repo, '/'-separated)."""

    card: ClassVar[str] = "README.md"
    card_yaml: ClassVar[str] = ".huggingface.yaml"
    rejected: ClassVar[str] = "rejected"  # the subset of the rejected answers
    plot: ClassVar[str] = "assets/length_by_level.png"
    licence: ClassVar[str] = "LICENSE.md"
    stats: ClassVar[str] = STATS_FILE
    recipe: ClassVar[str] = RECIPE_FILE
    report: ClassVar[str] = REPORT_FILE
    copied: ClassVar[tuple[str, ...]] = (recipe, report)  # the build directory's, pushed as they are
    by_subset: ClassVar[tuple[str, ...]] = (JUDGE_SCORES_FILE, JUDGE_REJECTIONS_FILE, SCORES_FILE)
    _data: ClassVar[str] = "data"

    @classmethod
    def subset_dir(cls, subset: str) -> str:
        """The folder of a subset's shards, with its trailing '/' (a prefix of each of their paths)."""
        return f"{cls._data}/{subset}/"

    @classmethod
    def shard(cls, subset: str, split: str, index: int, count: int) -> str:
        return f"{cls.subset_dir(subset)}{split}-{index:05d}-of-{count:05d}.parquet"

    @classmethod
    def shards(cls, subset: str, split: str) -> str:
        """The pattern of a split's shards, as the card's configs give it."""
        return f"{cls.subset_dir(subset)}{split}-*.parquet"
