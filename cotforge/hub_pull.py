"""Pull a published corpus back from the Hub into a build directory: its subsets through `datasets` (at a commit
whose card was checked first, hub_card.py), each row validated, and the judge's and scorer's tables beside them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from cotforge.corpus import BuildDir, BuildDirError, HubLayout
from cotforge.dataset_cards import write_finished
from cotforge.hub import HubError, explain_hub_error, hub_api, remote_bytes, subset_table
from cotforge.hub_card import BadCard, checked_revision, hub_path
from cotforge.judging.run import means_from_files
from cotforge.safety.atomic import atomic_folder, is_empty_folder
from cotforge.safety.lock import LOCK_FILE, directory_lock
from cotforge.safety.names import UnsafeName, safe_name
from cotforge.schemas.record import CoTRecord, Rejection
from cotforge.schemas.tables import to_frame


@dataclass
class PulledSubset:
    name: str
    records: list[CoTRecord | Rejection] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (row index, why it is not a valid record)

    def to_polars(self) -> pl.DataFrame:
        model = Rejection if self.name == HubLayout.rejected else CoTRecord
        return to_frame(self.records, model)


def subset_names(repo_id: str, revision: str | None = None) -> list[str]:
    """The subsets of the Hub repo `repo_id` at `revision` (never of a local folder of that name)."""
    import datasets

    try:
        return list(datasets.get_dataset_config_names(hub_path(repo_id), revision=revision))
    except Exception as error:
        raise explain_hub_error(error, repo_id, "read") from None


def _checked_revision(repo_id: str, revision: str | None) -> str:
    try:
        return checked_revision(repo_id, revision)
    except BadCard as error:
        raise HubError(f"{repo_id}: {error}; nothing was pulled", usage=True) from None
    except Exception as error:
        raise explain_hub_error(error, repo_id, "read") from None


@dataclass
class PulledCorpus:
    """What a pull brings: the subsets, and the rows of HubLayout.by_subset's tables (the judge's verdicts, the
    scorer's scores) that belong to them, by file name."""

    subsets: dict[str, PulledSubset]
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)


def pull(
    repo_id: str, subset: str | None = None, *, split: str = "train", revision: str | None = None
) -> dict[str, PulledSubset]:
    """Records of one subset (or all) through `datasets`, each validated; rows that fail are listed, not dropped."""
    return pull_corpus(repo_id, subset, split=split, revision=revision).subsets


def _pulled_tables(repo_id: str, revision: str, subsets: list[str]) -> dict[str, pl.DataFrame]:
    """The rows of `subsets` in each of HubLayout.by_subset's tables the repo holds at `revision`."""
    api = hub_api(None)
    tables = {}
    for name in HubLayout.by_subset:
        try:
            data = remote_bytes(api, repo_id, name, revision)
        except Exception as error:
            raise explain_hub_error(error, repo_id, f"read {name} of") from None
        if data is None:
            continue
        try:
            frame = subset_table(data, f"{repo_id}: {name}")
        except BuildDirError as error:
            raise HubError(f"{error}; nothing was pulled", usage=True) from None
        mine = frame.filter(pl.col("subset").is_in(subsets))
        if mine.height:
            tables[name] = mine
    return tables


def pull_corpus(
    repo_id: str, subset: str | None = None, *, split: str = "train", revision: str | None = None
) -> PulledCorpus:
    """The records of one subset (or all) through `datasets`, each validated (rows that fail are listed, not
    dropped), and the judge's and scorer's rows of those subsets."""
    import datasets
    from pydantic import ValidationError

    revision = _checked_revision(repo_id, revision)
    there = subset_names(repo_id, revision)
    if subset is not None:
        try:
            safe_name(subset, "--subset")
        except UnsafeName as error:
            raise HubError(str(error), usage=True) from None
        if subset not in there:
            raise HubError(f"{repo_id} has no subset {subset}; it has {', '.join(there) or 'none'}", usage=True)
    names = [subset] if subset else [n for n in there if n != HubLayout.rejected]
    pulled = {}
    for name in names:
        try:
            rows = datasets.load_dataset(hub_path(repo_id), name, split=split, revision=revision)
        except Exception as error:
            raise explain_hub_error(error, repo_id, f"load subset {name} of") from None
        model = Rejection if name == HubLayout.rejected else CoTRecord
        result = PulledSubset(name)
        for index, row in enumerate(rows):
            try:
                result.records.append(model.model_validate(row))
            except ValidationError as error:
                fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
                result.invalid.append((index, fields))
        pulled[name] = result
    return PulledCorpus(pulled, _pulled_tables(repo_id, revision, [n for n in names if n != HubLayout.rejected]))


def check_pull_target(out_dir: Path, overwrite: bool) -> None:
    """HubError (usage) unless `out_dir` is a new or empty folder, or `overwrite` allows replacing it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise HubError(f"{out_dir}: is a file; --out must be a folder", usage=True)
    if not overwrite and not is_empty_folder(out_dir, ignore=(LOCK_FILE,)):
        raise HubError(
            f"{out_dir}: is not empty; a pull writes a whole build directory, so give a new --out, or --overwrite "
            "(overwrite=True in Python) to replace this folder's content",
            usage=True,
        )


def save_pulled(pulled: PulledCorpus, out_dir: Path, origin: str = "pull", overwrite: bool = False) -> dict[str, int]:
    """Write a pull as a build directory (what `cotforge train` and `cotforge export` read), with a report, and the
    judge's and scorer's tables it brought. Written into a temporary folder that replaces `out_dir` when complete: a
    killed pull leaves the old folder."""
    records = [r for p in pulled.subsets.values() for r in p.records if isinstance(r, CoTRecord)]
    rejections = [r for p in pulled.subsets.values() for r in p.records if isinstance(r, Rejection)]
    with directory_lock(out_dir, "pull"):
        check_pull_target(out_dir, overwrite)
        with atomic_folder(out_dir, keep=(LOCK_FILE,)) as partial:
            folder = BuildDir(partial)
            counts = write_finished(folder, origin, records, rejections).subsets
            for name, frame in pulled.tables.items():
                frame.write_parquet(folder.path / name)
            try:  # the rows of the judge's tables are validated only here, as the means are read from them
                means_from_files(folder)
            except BuildDirError as error:
                where = str(error).replace(f"{folder.path}{os.sep}", "")  # the repo's file, not the temporary folder
                raise HubError(f"{origin}: {where}; nothing was pulled", usage=True) from None
    return counts
