"""The layout of a build directory, which build-cot writes and push, export and train read.

<dir>/subsets/<subset>.parquet   accepted CoTRecords, one file per teacher x level x format
<dir>/rejections.parquet         every Rejection, with its reason
<dir>/build_report.json          the BuildReport
<dir>/recipe.yaml                the recipe that made it
<dir>/store.sqlite               the crash-safe store (build-cot only)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import ValidationError

from cotforge.safety.atomic import atomic_write_text
from cotforge.safety.names import MAX_FILE_NAME_LENGTH, safe_name
from cotforge.schemas.record import BuildReport, CoTRecord, Rejection, RejectionReason
from cotforge.schemas.tables import TableError, read_parquet, write_parquet

STORE_FILE = "store.sqlite"
REPORT_FILE = "build_report.json"
RECIPE_FILE = "recipe.yaml"
SUBSETS_DIR = "subsets"
REJECTIONS_FILE = "rejections.parquet"


class BuildDirError(ValueError):
    """A build directory that is missing a part or holds a damaged one; the message names the file."""


def group_by_subset(records: Iterable[CoTRecord], rejections: list[Rejection]) -> dict[str, list[CoTRecord]]:
    """Records by subset name; names carry the data set when the build holds more than one."""
    records = list(records)
    several = len({r.dataset for r in records} | {r.dataset for r in rejections}) > 1
    by_subset: dict[str, list[CoTRecord]] = defaultdict(list)
    for record in records:
        by_subset[record.subset_in(several)].append(record)
    return dict(sorted(by_subset.items()))


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


def write_outputs(out_dir: Path, records: Iterable[CoTRecord], rejections: list[Rejection]) -> dict[str, int]:
    """Parquet per subset and the rejections, from rows in memory (an import, a filtered copy). Returns the
    counts."""
    return write_subsets(out_dir, group_by_subset(records, rejections), rejections)


def write_subsets(
    out_dir: Path, subsets: Mapping[str, Iterable[CoTRecord]], rejections: Iterable[Rejection]
) -> dict[str, int]:
    """Parquet per subset and the rejections, each streamed from its iterable; subset files no longer produced are
    removed. Returns the records written per subset."""
    subsets_dir = out_dir / SUBSETS_DIR
    for name in subsets:
        safe_name(name, "subset", MAX_FILE_NAME_LENGTH)
    counts = {name: write_parquet(subsets_dir / f"{name}.parquet", rows, CoTRecord) for name, rows in subsets.items()}
    for stale in subsets_dir.glob("*.parquet") if subsets_dir.exists() else []:
        if stale.stem not in subsets:
            stale.unlink()
    write_parquet(out_dir / REJECTIONS_FILE, rejections, Rejection)
    return counts


def write_report(out_dir: Path, report: BuildReport) -> None:
    atomic_write_text(out_dir / REPORT_FILE, report.model_dump_json(indent=2) + "\n")


def check_report_matches(build_dir: Path, report: BuildReport | None, subsets: Mapping[str, list[CoTRecord]]) -> None:
    """BuildDirError unless the report exists and counts exactly the subsets on disk: a run stopped while writing
    leaves no report, or one that describes other files."""
    if report is None:
        raise BuildDirError(
            f"{build_dir}: no {REPORT_FILE}, so nothing says the corpus was written in full (a run may have been "
            "stopped while writing it); run the build (or import, or pull) again"
        )
    on_disk = {name: len(rows) for name, rows in subsets.items()}
    if report.subsets != on_disk:
        changed = sorted(set(report.subsets.items()) ^ set(on_disk.items()))
        raise BuildDirError(
            f"{build_dir}: {REPORT_FILE} does not count the subsets on disk (differ: "
            f"{', '.join(sorted({name for name, _ in changed})[:5])}); a run was stopped while writing. Run it again"
        )


def subset_files(build_dir: Path) -> dict[str, Path]:
    folder = build_dir / SUBSETS_DIR
    if not folder.is_dir():
        raise BuildDirError(f"{build_dir}: not a build directory (no {SUBSETS_DIR}/ folder)")
    return {path.stem: path for path in sorted(folder.glob("*.parquet"))}


def read_subsets(build_dir: Path, only: Iterable[str] | None = None) -> dict[str, list[CoTRecord]]:
    files = subset_files(build_dir)
    wanted = list(only) if only is not None else list(files)
    missing = [name for name in wanted if name not in files]
    if missing:
        raise BuildDirError(f"{build_dir}: no subset {', '.join(missing)}; it has {', '.join(files) or 'none'}")
    try:
        return {name: read_parquet(files[name], CoTRecord) for name in wanted}
    except TableError as error:
        raise BuildDirError(str(error)) from None


def read_rejections(build_dir: Path) -> list[Rejection]:
    path = build_dir / REJECTIONS_FILE
    try:
        return read_parquet(path, Rejection) if path.exists() else []
    except TableError as error:
        raise BuildDirError(str(error)) from None


def read_report(build_dir: Path) -> BuildReport | None:
    path = build_dir / REPORT_FILE
    if not path.exists():
        return None
    try:
        return BuildReport.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, UnicodeDecodeError) as error:
        raise BuildDirError(f"{path}: not a valid build report ({str(error).splitlines()[0]})") from None
