"""Publish a build directory to the Hugging Face Hub in one atomic commit (pulling it back: hub_pull.py). The
repo's files are those cotforge.corpus.hublayout declares."""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from cotforge.corpus import BuildDir, BuildDirError, HubLayout, recipe_fields
from cotforge.dataset_cards import SubsetStats, corpus_stats, render_card
from cotforge.dataset_cards.card import licence_of, licence_text
from cotforge.dataset_cards.plot import length_by_level_png
from cotforge.dataset_cards.stats import saved_added_figures
from cotforge.hub_card import BadCard, card_configs
from cotforge.safety.diskfull import DiskFull, as_disk_full
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
    """The shards of each split the rows come from (HubLayout.shard)."""
    by_split: dict[str, list[AnswerOrigin]] = defaultdict(list)
    for row in rows:
        by_split[getattr(row, "source_split", None) or "train"].append(row)
    files = {}
    for split, split_rows in sorted(by_split.items()):
        count = max(1, -(-len(split_rows) // ROWS_PER_SHARD))
        for index in range(count):
            chunk = split_rows[index * ROWS_PER_SHARD : (index + 1) * ROWS_PER_SHARD]
            files[HubLayout.shard(subset, split, index, count)] = _parquet_bytes(chunk, model)
    return files


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def hub_api(token: str | None) -> Any:
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
        hub_api(token).whoami()
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


def remote_bytes(api, repo_id: str, path: str, revision: str | None) -> bytes | None:
    """A file of the dataset repo at `revision`; None when it has none at `path`."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        local = hf_hub_download(repo_id, path, repo_type="dataset", revision=revision, token=api.token)
    except EntryNotFoundError:
        return None
    return Path(local).read_bytes()


def _remote_text(api, repo_id: str, path: str, revision: str | None) -> str | None:
    data = remote_bytes(api, repo_id, path, revision)
    return None if data is None else data.decode("utf-8")


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
    api = hub_api(token)
    try:
        head, _ = _remote_state(api, repo_id)
        card = _remote_text(api, repo_id, HubLayout.card, head) or f"# {repo_id}\n"
        operations = [CommitOperationAdd(HubLayout.card, with_section(card, name, markdown).encode())]
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
    text = _remote_text(api, repo_id, HubLayout.card, revision)
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
        files.update(_shards(HubLayout.rejected, rejections, Rejection))
    for name in HubLayout.copied:
        if (directory.path / name).exists():
            files[name] = (directory.path / name).read_bytes()
    return files


def subset_table(data: bytes, where: str) -> pl.DataFrame:
    """One of HubLayout.by_subset's tables; BuildDirError naming `where` unless it is Parquet with a subset column
    (its other columns are checked by the command that reads it)."""
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except (OSError, pl.exceptions.PolarsError) as error:
        raise BuildDirError(f"{where}: not a readable Parquet file ({str(error).splitlines()[0]})") from None
    if frame.schema.get("subset") != pl.Utf8:
        raise BuildDirError(f"{where}: not a table of rows by subset (no text column 'subset')")
    return frame


def _local_tables(directory: BuildDir) -> dict[str, pl.DataFrame]:
    """The judge's and the scorer's tables (HubLayout.by_subset) the build directory holds, read and checked."""
    paths = [directory.path / name for name in HubLayout.by_subset]
    return {path.name: subset_table(path.read_bytes(), str(path)) for path in paths if path.exists()}


def _merged_tables(
    api: Any, repo_id: str, head: str | None, remote: dict[str, Any], local: dict[str, pl.DataFrame], pushed: list[str]
) -> tuple[dict[str, bytes], list[str]]:
    """Each of HubLayout.by_subset's tables as the push leaves it: the repo's rows of the subsets not pushed, then
    the build's rows; (files, tables of the repo left with no row, to delete)."""
    files: dict[str, bytes] = {}
    emptied = []
    for name in HubLayout.by_subset:
        frames = [local[name]] if name in local else []
        if name in remote:
            there = subset_table(remote_bytes(api, repo_id, name, head) or b"", f"{repo_id} on the Hub: {name}")
            frames.insert(0, there.filter(~pl.col("subset").is_in(pushed)))
        merged = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        if merged.height:
            buffer = io.BytesIO()
            merged.write_parquet(buffer)
            files[name] = buffer.getvalue()
        elif name in remote:
            emptied.append(name)
    return files, emptied


def _card_files(repo_id: str, ordered: list[SubsetStats], card: dict[str, Any]) -> dict[str, bytes]:
    """The card, its statistics and plot, and the licence text when the sources' licences differ."""
    files: dict[str, bytes] = {}
    plot = length_by_level_png(ordered)
    if plot is not None:
        files[HubLayout.plot] = plot
    files[HubLayout.stats] = (json.dumps({s.subset: s.model_dump() for s in ordered}, indent=1) + "\n").encode()
    files[HubLayout.card] = render_card(repo_id, ordered, has_plot=plot is not None, **card).encode()
    datasets = sorted({d for s in ordered for d in s.datasets})
    if licence_of(datasets, card["license_id"])["license"] == "other":
        files[HubLayout.licence] = ("# License\n\n" + licence_text(datasets)).encode()
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
    local_tables = _local_tables(directory)
    api = hub_api(token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        head, remote = _remote_state(api, repo_id)
        earlier = _remote_json(api, repo_id, HubLayout.stats, head) or {}
        other_configs = [c for c in _remote_configs(api, repo_id, head) if c.get("config_name") not in earlier]
        tables, emptied = _merged_tables(api, repo_id, head, remote, local_tables, sorted(subsets))
    except BuildDirError:
        raise
    except Exception as error:
        raise explain_hub_error(error, repo_id, "push to") from None
    merged = {name: SubsetStats.model_validate(value) for name, value in earlier.items()}
    added = saved_added_figures(directory)  # the scores and judge means: the records alone do not give them
    fresh = corpus_stats(subsets, directory.read_rejections())
    merged.update({name: s.model_copy(update=added.get(name, {})) for name, s in fresh.items()})
    rejected_dir = HubLayout.subset_dir(HubLayout.rejected)
    rejected = any(p.startswith(rejected_dir) for p in [*files, *remote])  # an earlier push's stays
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
    files.update(tables)
    return _commit(api, repo_id, head, remote, files, sorted(subsets), message, emptied)


def _commit(
    api: Any,
    repo_id: str,
    head: str | None,
    remote: dict[str, Any],
    files: dict[str, bytes],
    subsets: list[str],
    message: str | None,
    emptied: list[str],
) -> PushResult:
    """One commit of what changed, and of the removal of files of the pushed subsets that are no longer made (and
    of the `emptied` files)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    pushed_dirs = {HubLayout.subset_dir(name) for name in subsets}
    rejected_dir = HubLayout.subset_dir(HubLayout.rejected)
    if any(p.startswith(rejected_dir) for p in files):
        pushed_dirs.add(rejected_dir)
    stale = [p for p in remote if any(p.startswith(d) for d in pushed_dirs) and p not in files] + emptied
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


def push_model(folder: Path, repo_id: str, *, ignore: list[str], token: str | None = None) -> str:
    """Upload a model folder to the model repo `repo_id` (made if missing) in one commit; returns the commit."""
    check_repo_id(repo_id)
    api = hub_api(token)
    try:
        api.create_repo(repo_id, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, ignore_patterns=ignore)
    except Exception as error:
        raise explain_hub_error(error, repo_id, f"push the model (saved in {folder}) to") from None
    return info.oid
