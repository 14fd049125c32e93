"""The build directory: the one place that knows its layout. build-cot writes it; push, export, check, train and the
sweep read it, always through `BuildDir`.

<dir>/subsets/<subset>.parquet   accepted CoTRecords, one file per teacher x level x format
<dir>/rejections.parquet         every Rejection, with its reason
<dir>/build_report.json          the BuildReport
<dir>/recipe.yaml                the recipe that made it (BuildDir.write_recipe / read_recipe)
<dir>/contamination.json         the last `cotforge check` of it
<dir>/cotforge_stats.json        per-subset statistics and quality signals (also published beside the data)
<dir>/suitability.parquet        per-record scores under students (`cotforge score`), keyed by record and student
<dir>/suitability.parts/         scores of a run not yet merged into suitability.parquet, a file per batch
<dir>/store.sqlite               the crash-safe store (build-cot only)
<dir>/judge.sqlite               the judge's verdicts, each paid once (cotforge judge)
<dir>/judge_scores.parquet       one row per record and rubric: the judge's score and reason
<dir>/judge_rejections.parquet   the judge's verdicts that were not valid (not JSON, out of range), with why
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import yaml
from pydantic import ValidationError

from cotforge.corpus.folder import Folder
from cotforge.recipes.loader import RecipeError, parse_recipe, parse_yaml
from cotforge.safety.atomic import atomic_path, atomic_write_text
from cotforge.safety.names import MAX_FILE_NAME_LENGTH, safe_name
from cotforge.safety.redact import redact_url
from cotforge.schemas.judge import JUDGE_COLUMNS, JudgeRejection, JudgeScore
from cotforge.schemas.recipe import Recipe
from cotforge.schemas.record import BuildReport, CoTRecord, Rejection, RejectionReason
from cotforge.schemas.tables import TableError, read_parquet, write_parquet

STORE_FILE = "store.sqlite"
REPORT_FILE = "build_report.json"
RECIPE_FILE = "recipe.yaml"
SUBSETS_DIR = "subsets"
REJECTIONS_FILE = "rejections.parquet"
CONTAMINATION_FILE = "contamination.json"
STATS_FILE = "cotforge_stats.json"
# What other commands add to a subset's statistics (cotforge score, cotforge judge): the records alone do not give
# them, so statistics made again from the records keep the saved ones.
ADDED_FIGURES = ("suitability", "judge")
Judged = TypeVar("Judged", JudgeScore, JudgeRejection)
SCORES_FILE = "suitability.parquet"
SCORE_PARTS_DIR = "suitability.parts"
JUDGE_STORE_FILE = "judge.sqlite"
JUDGE_SCORES_FILE = "judge_scores.parquet"
JUDGE_REJECTIONS_FILE = "judge_rejections.parquet"
CACHE_DIR = "cache"  # what earlier runs read of the sources (SourceCache): safe to delete


class BuildDirError(ValueError):
    """A build directory that is missing a part or holds a damaged one; the message names the file."""


@dataclass(frozen=True)
class ContaminationSummary:
    """What `cotforge check` left in a build directory."""

    summary: str
    overlaps: int


class BuildDir(Folder):
    """A build directory at `path` (which need not exist yet)."""

    # ---- where things are -------------------------------------------------------------------------------------

    @property
    def store_path(self) -> Path:
        return self.path / STORE_FILE

    @property
    def cache_dir(self) -> Path:
        return self.path / CACHE_DIR

    @property
    def report_path(self) -> Path:
        return self.path / REPORT_FILE

    @property
    def recipe_path(self) -> Path:
        return self.path / RECIPE_FILE

    @property
    def subsets_dir(self) -> Path:
        return self.path / SUBSETS_DIR

    @property
    def rejections_path(self) -> Path:
        return self.path / REJECTIONS_FILE

    @property
    def contamination_path(self) -> Path:
        return self.path / CONTAMINATION_FILE

    @property
    def stats_path(self) -> Path:
        return self.path / STATS_FILE

    @property
    def scores_path(self) -> Path:
        return self.path / SCORES_FILE

    @property
    def score_parts_dir(self) -> Path:
        return self.path / SCORE_PARTS_DIR

    @property
    def judge_store_path(self) -> Path:
        return self.path / JUDGE_STORE_FILE

    @property
    def judge_scores_path(self) -> Path:
        return self.path / JUDGE_SCORES_FILE

    def subset_path(self, name: str) -> Path:
        return self.subsets_dir / f"{name}.parquet"

    def is_build(self) -> bool:
        """Whether the directory holds a build's outputs (a subsets/ folder)."""
        return self.subsets_dir.is_dir()

    # ---- subsets and rejections -------------------------------------------------------------------------------

    def subset_files(self) -> dict[str, Path]:
        if not self.is_build():
            raise BuildDirError(f"{self.path}: not a build directory (no {SUBSETS_DIR}/ folder)")
        return {path.stem: path for path in sorted(self.subsets_dir.glob("*.parquet"))}

    def read_subsets(self, only: Iterable[str] | None = None) -> dict[str, list[CoTRecord]]:
        files = self.subset_files()
        wanted = list(only) if only is not None else list(files)
        missing = [name for name in wanted if name not in files]
        if missing:
            raise BuildDirError(f"{self.path}: no subset {', '.join(missing)}; it has {', '.join(files) or 'none'}")
        try:
            return {name: read_parquet(files[name], CoTRecord) for name in wanted}
        except TableError as error:
            raise BuildDirError(str(error)) from None

    def read_records(self, only: Iterable[str] | None = None) -> list[CoTRecord]:
        """Every record of the subsets (or of `only`), subset after subset."""
        return [record for rows in self.read_subsets(only).values() for record in rows]

    def read_rejections(self) -> list[Rejection]:
        try:
            return read_parquet(self.rejections_path, Rejection) if self.rejections_path.exists() else []
        except TableError as error:
            raise BuildDirError(str(error)) from None

    def write_subsets(
        self, subsets: Mapping[str, Iterable[CoTRecord]], rejections: Iterable[Rejection]
    ) -> dict[str, int]:
        """Parquet per subset and the rejections, each streamed from its iterable; subset files no longer produced
        are removed. Returns the records written per subset."""
        for name in subsets:
            safe_name(name, "subset", MAX_FILE_NAME_LENGTH)
        counts = {name: write_parquet(self.subset_path(name), rows, CoTRecord) for name, rows in subsets.items()}
        for stale in self.subsets_dir.glob("*.parquet") if self.subsets_dir.exists() else []:
            if stale.stem not in subsets:
                stale.unlink()
        write_parquet(self.rejections_path, rejections, Rejection)
        return counts

    def write_outputs(self, records: Iterable[CoTRecord], rejections: list[Rejection]) -> dict[str, int]:
        """Parquet per subset and the rejections, from rows in memory (an import, a filtered copy). Returns the
        counts."""
        return self.write_subsets(group_by_subset(records, rejections), rejections)

    # ---- report, recipe, contamination --------------------------------------------------------------------------

    def write_report(self, report: BuildReport) -> None:
        atomic_write_text(self.report_path, report.model_dump_json(indent=2) + "\n")

    def read_report(self) -> BuildReport | None:
        if not self.report_path.exists():
            return None
        try:
            return BuildReport.model_validate_json(self.report_path.read_text(encoding="utf-8"))
        except (ValidationError, UnicodeDecodeError) as error:
            first = str(error).splitlines()[0]
            raise BuildDirError(f"{self.report_path}: not a valid build report ({first})") from None

    def write_recipe(self, recipe: Recipe) -> None:
        """The recipe as YAML: only what differs from the defaults, in the recipe's own field order."""
        atomic_write_text(self.recipe_path, yaml.safe_dump(recipe_fields(recipe), sort_keys=False))

    def read_recipe(self) -> Recipe | None:
        """The recipe that made the build; None when it has none (an import, a pull)."""
        if not self.recipe_path.exists():
            return None
        source = str(self.recipe_path)
        try:
            return parse_recipe(parse_yaml(self.recipe_path.read_text(encoding="utf-8"), source), source)
        except (RecipeError, UnicodeDecodeError) as error:
            raise BuildDirError(f"{self.recipe_path}: the directory's recipe cannot be read ({error})") from None

    def write_contamination(self, data: dict[str, Any]) -> None:
        atomic_write_text(self.contamination_path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")

    def write_stats(self, stats: Mapping[str, Any], *, keep_added: bool = False) -> None:
        """Per-subset statistics (SubsetStats as JSON, cotforge.dataset_cards), keyed by subset. `keep_added`:
        statistics made again from the records keep the ADDED_FIGURES the saved ones have (an unreadable file has
        none to keep)."""
        if keep_added:
            try:
                saved = self.read_stats() or {}
            except BuildDirError:
                saved = {}
            stats = {name: entry | added_figures(saved.get(name)) for name, entry in stats.items()}
        atomic_write_text(self.stats_path, json.dumps(stats, indent=1, ensure_ascii=False) + "\n")

    def read_stats(self) -> dict[str, Any] | None:
        """The statistics written with the subsets; None when the build has none (made before they existed)."""
        if not self.stats_path.exists():
            return None
        try:
            found = json.loads(self.stats_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise BuildDirError(f"{self.stats_path}: not a statistics file ({error})") from None
        if not isinstance(found, dict):
            raise BuildDirError(f"{self.stats_path}: not a statistics file (not an object keyed by subset)")
        return found

    def check_report_matches(self, report: BuildReport | None, subsets: Mapping[str, list[CoTRecord]]) -> None:
        """BuildDirError unless the report exists and counts exactly the subsets on disk: a run stopped while
        writing leaves no report, or one that describes other files."""
        if report is None:
            raise BuildDirError(
                f"{self.path}: no {REPORT_FILE}, so nothing says the corpus was written in full (a run may have been "
                "stopped while writing it); run the build (or import, or pull) again"
            )
        on_disk = {name: len(rows) for name, rows in subsets.items()}
        if report.subsets != on_disk:
            changed = sorted(set(report.subsets.items()) ^ set(on_disk.items()))
            raise BuildDirError(
                f"{self.path}: {REPORT_FILE} does not count the subsets on disk (differ: "
                f"{', '.join(sorted({name for name, _ in changed})[:5])}); a run was stopped while writing. "
                "Run it again"
            )

    # ---- the judge's verdicts ----------------------------------------------------------------------------------

    def write_judgements(self, scores: Iterable[JudgeScore], rejections: Iterable[JudgeRejection]) -> None:
        for path, rows, model in (
            (self.judge_scores_path, scores, JudgeScore),
            (self.path / JUDGE_REJECTIONS_FILE, rejections, JudgeRejection),
        ):
            frame = pl.DataFrame([row.model_dump() for row in rows], schema=JUDGE_COLUMNS[model], orient="row")
            with atomic_path(path) as partial:
                frame.write_parquet(partial)

    def read_judge_scores(self) -> list[JudgeScore]:
        """The judge's scores; BuildDirError when the build was never judged."""
        path = self.judge_scores_path
        if not path.exists():
            raise BuildDirError(f"{self.path}: no {JUDGE_SCORES_FILE}; run `cotforge judge {self.path}` first")
        return _read_judged(path, JudgeScore)

    def read_judge_rejections(self) -> list[JudgeRejection]:
        """The judge's malformed verdicts (none when the file is absent)."""
        path = self.path / JUDGE_REJECTIONS_FILE
        return _read_judged(path, JudgeRejection) if path.exists() else []

    def read_contamination(self) -> ContaminationSummary | None:
        """The summary of the last `cotforge check`; None when the build was never checked."""
        if not self.contamination_path.exists():
            return None
        try:
            saved = json.loads(self.contamination_path.read_text(encoding="utf-8"))
            return ContaminationSummary(summary=saved["summary"], overlaps=len(saved["overlaps"]))
        except (ValueError, KeyError, TypeError) as error:
            raise BuildDirError(f"{self.contamination_path}: not a contamination report ({error})") from None


def _read_judged(path: Path, model: type[Judged]) -> list[Judged]:
    try:
        return [model.model_validate(row) for row in pl.read_parquet(path).to_dicts()]
    except (pl.exceptions.PolarsError, OSError, ValidationError) as error:
        what = "judge scores" if model is JudgeScore else "judge rejections"
        raise BuildDirError(f"{path}: not a {what} file ({str(error).splitlines()[0]})") from None


def recipe_fields(recipe: Recipe) -> dict[str, Any]:
    """A recipe as the plain mapping recipe.yaml holds (and a dataset card summarises): teacher URLs redacted."""
    data = recipe.model_dump(mode="json", exclude_defaults=True)
    for teacher in [*data.get("teachers", []), data.get("judge", {}).get("teacher", {})]:
        if teacher.get("base_url"):
            teacher["base_url"] = redact_url(teacher["base_url"])
    return data


def group_by_subset(records: Iterable[CoTRecord], rejections: list[Rejection]) -> dict[str, list[CoTRecord]]:
    """Records by subset name; names carry the data set when the build holds more than one."""
    records = list(records)
    several = len({r.dataset for r in records} | {r.dataset for r in rejections}) > 1
    by_subset: dict[str, list[CoTRecord]] = defaultdict(list)
    for record in records:
        by_subset[record.subset_in(several)].append(record)
    return dict(sorted(by_subset.items()))


def rejections_by_subset(
    subsets: Mapping[str, Iterable[CoTRecord]], rejections: Iterable[Rejection]
) -> dict[str, list[Rejection]]:
    """The rejections of each subset, named as group_by_subset names the records (with the data set when the build
    holds more than one)."""
    rejections = list(rejections)
    datasets = {r.dataset for rows in subsets.values() for r in rows} | {r.dataset for r in rejections}
    by_subset: dict[str, list[Rejection]] = defaultdict(list)
    for rejection in rejections:
        by_subset[rejection.subset_in(len(datasets) > 1)].append(rejection)
    return dict(by_subset)


def report_of(
    recipe: str, records: list[CoTRecord], rejections: list[Rejection], subsets: dict[str, int]
) -> BuildReport:
    """The report of a build made from finished rows (an import, a filtered copy): nothing pending. `subsets` are
    the counts write_outputs returned."""
    reasons = Counter(r.reason for r in rejections)
    return BuildReport(
        recipe=recipe,
        requested=len(records) + len(rejections),
        accepted=len(records),
        failed=reasons.pop(RejectionReason.api_error, 0),
        rejected=dict(reasons),
        subsets=subsets,
    )


def added_figures(entry: Any) -> dict[str, Any]:
    """The ADDED_FIGURES a subset's saved statistics hold (none given: an empty dict)."""
    return {key: entry[key] for key in ADDED_FIGURES if isinstance(entry, dict) and entry.get(key)}
