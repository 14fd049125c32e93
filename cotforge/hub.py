"""Publish a build directory to the Hugging Face Hub in one atomic commit, and pull published corpora back.

Layout on the Hub: data/<subset>/<split>-NNNNN-of-NNNNN.parquet, README.md (the card), recipe.yaml,
build_report.json, cotforge_stats.json (per-subset statistics, merged across pushes) and the card's plot.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from cotforge.corpus import BuildDir, BuildDirError, recipe_fields
from cotforge.corpus.builddir import STATS_FILE
from cotforge.dataset_cards import SubsetStats, corpus_stats, render_card, write_finished
from cotforge.dataset_cards.card import PLOT_PATH, REJECTED_SUBSET, licence_of, licence_text
from cotforge.dataset_cards.plot import length_by_level_png
from cotforge.dataset_cards.stats import saved_added_figures
from cotforge.hub_card import CARD, BadCard, card_configs, checked_revision, hub_path
from cotforge.safety.atomic import atomic_folder, is_empty_folder
from cotforge.safety.diskfull import DiskFull, as_disk_full
from cotforge.safety.lock import LOCK_FILE, directory_lock
from cotforge.safety.names import UnsafeName, safe_name
from cotforge.schemas.record import AnswerOrigin, CoTRecord, Rejection
from cotforge.schemas.tables import to_frame

ROWS_PER_SHARD = 100_000
ROW_GROUP_SIZE = 1_000  # small row groups keep the Hub's dataset viewer fast


class HubError(RuntimeError):
    """A push or pull that could not be done; the message says why and what state the Hub is in. `usage`: the
    user's input is at fault (a malformed repo id, a repo that does not exist), not the network or the Hub."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubError(f"{repo_id!r} is not a repo id such as my-org/cot-gsm8k: {error}", usage=True) from None


@dataclass
class PushResult:
    repo_id: str
    commit: str | None
    changed: bool
    subsets: list[str]
    files: list[str]


def _parquet_bytes(rows: list[AnswerOrigin], model: type[AnswerOrigin]) -> bytes:
    buffer = io.BytesIO()
    to_frame(rows, model).write_parquet(buffer, row_group_size=ROW_GROUP_SIZE)
    return buffer.getvalue()


def _shards(subset: str, rows: list[AnswerOrigin], model: type[AnswerOrigin]) -> dict[str, bytes]:
    """data/<subset>/<split>-NNNNN-of-NNNNN.parquet for each split the rows come from."""
    by_split: dict[str, list[AnswerOrigin]] = defaultdict(list)
    for row in rows:
        by_split[getattr(row, "source_split", None) or "train"].append(row)
    files = {}
    for split, split_rows in sorted(by_split.items()):
        count = max(1, -(-len(split_rows) // ROWS_PER_SHARD))
        for index in range(count):
            chunk = split_rows[index * ROWS_PER_SHARD : (index + 1) * ROWS_PER_SHARD]
            files[f"data/{subset}/{split}-{index:05d}-of-{count:05d}.parquet"] = _parquet_bytes(chunk, model)
    return files


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _api(token: str | None):
    from huggingface_hub import HfApi

    return HfApi(token=token)


def explain_hub_error(error: Exception, repo_id: str, action: str) -> HubError | DiskFull:
    """A readable error for the common failures; never includes a token. A full disk (the download cache) is the
    user's to fix, not the Hub's failure."""
    full = as_disk_full(error)
    if full is not None:
        return full
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(error, (RepositoryNotFoundError, DatasetNotFoundError)) or status == 404:
        return HubError(f"{action} {repo_id}: no such dataset repo, or no access to it", usage=True)
    if status == 401:
        return HubError(
            f"{action} {repo_id}: not logged in or the token is invalid (HTTP 401); set HF_TOKEN or run `hf auth login`"
        )
    if status == 403:
        return HubError(f"{action} {repo_id}: the token may not write to this repo (HTTP 403)")
    if isinstance(error, HfHubHTTPError):
        return HubError(f"{action} {repo_id}: the Hub answered HTTP {status}: {str(error).splitlines()[0]}")
    return HubError(f"{action} {repo_id}: network failure ({type(error).__name__}: {error})")


def check_can_push(repo_id: str, token: str | None = None) -> None:
    """HubError now, not after hours of training: a malformed repo id, or a token the Hub refuses."""
    check_repo_id(repo_id)
    try:
        _api(token).whoami()
    except Exception as error:
        raise explain_hub_error(error, repo_id, "push to") from None


def _remote_state(api, repo_id: str) -> tuple[str | None, dict[str, Any]]:
    """The head commit and {path: entry} of the dataset repo as it is now."""
    info = api.dataset_info(repo_id)
    entries = {}
    for item in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True, revision=info.sha):
        if hasattr(item, "blob_id"):
            entries[item.path] = item
    return info.sha, entries


def _remote_text(api, repo_id: str, path: str, revision: str | None) -> str | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        local = hf_hub_download(repo_id, path, repo_type="dataset", revision=revision, token=api.token)
    except EntryNotFoundError:
        return None
    return Path(local).read_text(encoding="utf-8")


def _remote_json(api, repo_id: str, path: str, revision: str | None) -> Any:
    text = _remote_text(api, repo_id, path, revision)
    return None if text is None else json.loads(text)


def with_section(card: str, name: str, markdown: str) -> str:
    """The card with section `name` (between cotforge markers) replaced, or added before its citation."""
    start, end = f"<!-- cotforge:{name} -->", f"<!-- /cotforge:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}\n"
    if start in card and end in card:
        head, rest = card.split(start, 1)
        return head + block + rest.split(end, 1)[1].lstrip("\n")
    if "\n## Citation" in card:
        head, tail = card.split("\n## Citation", 1)
        return f"{head.rstrip()}\n\n{block}\n## Citation{tail}"
    return f"{card.rstrip()}\n\n{block}"


def push_card_section(repo_id: str, name: str, markdown: str, files: dict[str, bytes], token: str | None = None) -> str:
    """Add or replace one section of a dataset repo's card, with the files it shows, in one commit; the data files
    are not touched. Returns the commit id."""
    from huggingface_hub import CommitOperationAdd

    check_repo_id(repo_id)
    api = _api(token)
    try:
        head, _ = _remote_state(api, repo_id)
        card = _remote_text(api, repo_id, "README.md", head) or f"# {repo_id}\n"
        operations = [CommitOperationAdd("README.md", with_section(card, name, markdown).encode())]
        operations += [CommitOperationAdd(path, data) for path, data in files.items()]
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=f"cotforge: card section {name}",
            repo_type="dataset",
            parent_commit=head,
        )
    except Exception as error:
        raise explain_hub_error(error, repo_id, "update the card of") from None
    return info.oid


def _remote_configs(api, repo_id: str, revision: str | None) -> list[dict[str, Any]]:
    text = _remote_text(api, repo_id, CARD, revision)
    try:
        return [] if text is None else card_configs(text)
    except BadCard as error:
        raise HubError(f"{repo_id} on the Hub: {error}; fix or remove the card first", usage=True) from None


def _unchanged(path: str, data: bytes, remote: dict[str, Any]) -> bool:
    entry = remote.get(path)
    if entry is None:
        return False
    if getattr(entry, "lfs", None) is not None:
        return entry.lfs.sha256 == hashlib.sha256(data).hexdigest()
    return entry.blob_id == _git_blob_sha(data)


def _incompleteness(directory: BuildDir, subsets: dict[str, list[CoTRecord]], allow_incomplete: bool) -> str | None:
    """What the card says of a build with answers failed or pending, or with no report; such a build, or one whose
    report does not count the subsets on disk (a run stopped while writing), is refused unless allowed."""
    report = directory.read_report()
    if not allow_incomplete:
        directory.check_report_matches(report, subsets)
    if report is None:
        return "the build directory had no build report when this was pushed, so it may be incomplete"
    if report.complete:
        return None
    incomplete = (
        f"{report.failed + report.pending:,} of {report.requested:,} requested answers were not answered when this "
        f"was pushed ({report.failed:,} failed, {report.pending:,} pending)"
    )
    if not allow_incomplete:
        raise BuildDirError(
            f"{directory}: {incomplete}. Run the build again to finish it, or push with --allow-incomplete "
            "(the card then says the corpus is incomplete)"
        )
    return incomplete


def _data_files(directory: BuildDir, subsets: dict[str, list[CoTRecord]], include_rejected: bool) -> dict[str, bytes]:
    """The Parquet shards of every subset (and of the rejections when asked), the recipe and the report."""
    files: dict[str, bytes] = {}
    for name, records in subsets.items():
        files.update(_shards(name, records, CoTRecord))
    rejections = directory.read_rejections() if include_rejected else []
    if rejections:
        files.update(_shards(REJECTED_SUBSET, rejections, Rejection))
    for path in (directory.recipe_path, directory.report_path):
        if path.exists():
            files[path.name] = path.read_bytes()
    return files


def _card_files(repo_id: str, ordered: list[SubsetStats], card: dict[str, Any]) -> dict[str, bytes]:
    """The card, its statistics and plot, and the licence text when the sources' licences differ."""
    files: dict[str, bytes] = {}
    plot = length_by_level_png(ordered)
    if plot is not None:
        files[PLOT_PATH] = plot
    files[STATS_FILE] = (json.dumps({s.subset: s.model_dump() for s in ordered}, indent=1) + "\n").encode()
    files["README.md"] = render_card(repo_id, ordered, has_plot=plot is not None, **card).encode()
    datasets = sorted({d for s in ordered for d in s.datasets})
    if licence_of(datasets, card["license_id"])["license"] == "other":
        files["LICENSE.md"] = ("# License\n\n" + licence_text(datasets)).encode()
    return files


def push(
    build_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    include_rejected: bool = False,
    license_id: str | None = None,
    token: str | None = None,
    message: str | None = None,
    contamination: str | None = None,
    allow_incomplete: bool = False,
) -> PushResult:
    """Push every subset of a build directory; other subsets already on the Hub stay, and the card merges. Every
    file is read and validated before anything is sent (BuildDirError names a bad one); a build with answers
    failed or pending is refused unless `allow_incomplete`, and then the card says so."""
    check_repo_id(repo_id)
    directory = BuildDir(build_dir)
    subsets = directory.read_subsets()
    if not subsets:
        raise BuildDirError(f"{build_dir}: no subsets to push")
    incomplete = _incompleteness(directory, subsets, allow_incomplete)
    built_by = directory.read_recipe()
    files = _data_files(directory, subsets, include_rejected)
    api = _api(token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        head, remote = _remote_state(api, repo_id)
        earlier = _remote_json(api, repo_id, STATS_FILE, head) or {}
        other_configs = [c for c in _remote_configs(api, repo_id, head) if c.get("config_name") not in earlier]
    except Exception as error:
        raise explain_hub_error(error, repo_id, "push to") from None
    merged = {name: SubsetStats.model_validate(value) for name, value in earlier.items()}
    added = saved_added_figures(directory)  # the scores and judge means: the records alone do not give them
    fresh = corpus_stats(subsets, directory.read_rejections())
    merged.update({name: s.model_copy(update=added.get(name, {})) for name, s in fresh.items()})
    rejected = any(p.startswith(f"data/{REJECTED_SUBSET}/") for p in [*files, *remote])  # an earlier push's stays
    card = {
        "recipe": None if built_by is None else recipe_fields(built_by),
        "license_id": license_id,
        "other_configs": other_configs,
        "rejected_splits": ["train"] if rejected else [],
        "contamination": contamination,
        "incomplete": incomplete,
        "coverage": None if (report := directory.read_report()) is None else report.coverage,
    }
    files.update(_card_files(repo_id, [merged[name] for name in sorted(merged)], card))
    return _commit(api, repo_id, head, remote, files, sorted(subsets), message)


def _commit(
    api: Any,
    repo_id: str,
    head: str | None,
    remote: dict[str, Any],
    files: dict[str, bytes],
    subsets: list[str],
    message: str | None,
) -> PushResult:
    """One commit of what changed, and of the removal of files of the pushed subsets that are no longer made."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    pushed_dirs = {f"data/{name}/" for name in subsets}
    if any(p.startswith(f"data/{REJECTED_SUBSET}/") for p in files):
        pushed_dirs.add(f"data/{REJECTED_SUBSET}/")
    stale = [p for p in remote if any(p.startswith(d) for d in pushed_dirs) and p not in files]
    changed_files = [p for p, data in files.items() if not _unchanged(p, data, remote)]
    if not changed_files and not stale:
        return PushResult(repo_id, head, False, subsets, [])
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=files[p]) for p in changed_files]
    operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
    try:
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=message or f"cotforge: {', '.join(subsets)}",
            repo_type="dataset",
            parent_commit=head,  # refuse to overwrite a commit made since we looked
        )
    except Exception as error:
        raise explain_hub_error(error, repo_id, "push to (nothing was committed)") from None
    return PushResult(repo_id, info.oid, info.oid != head, subsets, sorted(changed_files + stale))


# ---- pull ------------------------------------------------------------------------------------------------------


@dataclass
class PulledSubset:
    name: str
    records: list[CoTRecord | Rejection] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (row index, why it is not a valid record)

    def to_polars(self) -> pl.DataFrame:
        model = Rejection if self.name == REJECTED_SUBSET else CoTRecord
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


def pull(
    repo_id: str, subset: str | None = None, *, split: str = "train", revision: str | None = None
) -> dict[str, PulledSubset]:
    """Records of one subset (or all) through `datasets`, each validated; rows that fail are listed, not dropped."""
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
    names = [subset] if subset else [n for n in there if n != REJECTED_SUBSET]
    pulled = {}
    for name in names:
        try:
            rows = datasets.load_dataset(hub_path(repo_id), name, split=split, revision=revision)
        except Exception as error:
            raise explain_hub_error(error, repo_id, f"load subset {name} of") from None
        model = Rejection if name == REJECTED_SUBSET else CoTRecord
        result = PulledSubset(name)
        for index, row in enumerate(rows):
            try:
                result.records.append(model.model_validate(row))
            except ValidationError as error:
                fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
                result.invalid.append((index, fields))
        pulled[name] = result
    return pulled


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


def save_pulled(
    pulled: dict[str, PulledSubset], out_dir: Path, origin: str = "pull", overwrite: bool = False
) -> dict[str, int]:
    """Write pulled subsets as a build directory (what `cotforge train` and `cotforge export` read), with a report.
    Written into a temporary folder that replaces `out_dir` when complete: a killed pull leaves the old folder."""
    records = [r for p in pulled.values() for r in p.records if isinstance(r, CoTRecord)]
    rejections = [r for p in pulled.values() for r in p.records if isinstance(r, Rejection)]
    with directory_lock(out_dir, "pull"):
        check_pull_target(out_dir, overwrite)
        with atomic_folder(out_dir, keep=(LOCK_FILE,)) as partial:
            folder = BuildDir(partial)
            counts = write_finished(folder, origin, records, rejections).subsets
    return counts


def push_model(folder: Path, repo_id: str, *, ignore: list[str], token: str | None = None) -> str:
    """Upload a model folder to the model repo `repo_id` (made if missing) in one commit; returns the commit."""
    check_repo_id(repo_id)
    api = _api(token)
    try:
        api.create_repo(repo_id, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, ignore_patterns=ignore)
    except Exception as error:
        raise explain_hub_error(error, repo_id, f"push the model (saved in {folder}) to") from None
    return info.oid
