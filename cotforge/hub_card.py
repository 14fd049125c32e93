"""What `pull` asks the Hub for, and the card it reads first. A repo id is always the Hub's: `datasets` is given
`hf://datasets/<id>` at a fixed commit, so a local folder named like the repo is never read in its place. The repo's
card (README.md) is checked before `datasets` reads it: its YAML header must be plain data (no aliases, no tags) and
its `configs` must name subsets by plain names and data files inside the repo, so a hostile card is bad input that
names the file and the field, never a fetch from elsewhere or a traceback."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from cotforge.safety.names import UnsafeName, safe_name
from cotforge.safety.yamltext import YamlError, load_plain_yaml

CARD = "README.md"
_HEADER = re.compile(r"\A\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)  # huggingface_hub's rule


class BadCard(ValueError):
    """A card `datasets` must not read; the message names the file and the field."""


def hub_path(repo_id: str) -> str:
    """What `datasets` is given for the Hub repo `repo_id`: never taken for a local folder."""
    return f"hf://datasets/{repo_id}"


def _repo_file(value: object, field: str) -> None:
    """A data file pattern of the card: a relative path inside the repo, no `..`, no URL."""
    if not isinstance(value, str) or not value:
        raise BadCard(f"{field}: must be a path in the repo")
    path = PurePosixPath(value.replace("\\", "/"))
    if "://" in value or ":" in path.parts[0] or path.is_absolute() or ".." in path.parts:
        raise BadCard(f"{field}: {value[:200]!a} is not a path inside the repo (no URL, absolute path or '..')")


def _data_files(value: object, field: str) -> None:
    """`data_files` as `datasets` takes it: a path, a list of paths, or a list (or mapping) of splits and paths."""
    if isinstance(value, dict):
        value = [{"split": split, "path": paths} for split, paths in value.items()]
    for index, entry in enumerate(value if isinstance(value, list) else [value]):
        where = f"{field}[{index}]" if isinstance(value, list) else field
        if isinstance(entry, dict):
            paths = entry.get("path")
            for position, path in enumerate(paths if isinstance(paths, list) else [paths]):
                _repo_file(path, f"{where}.path" + (f"[{position}]" if isinstance(paths, list) else ""))
        else:
            _repo_file(entry, where)


def card_configs(text: str) -> list[dict[str, Any]]:
    """The configs a card declares (none without a header); BadCard when `datasets` must not read it."""
    header = _HEADER.match(text)
    if header is None:
        return []
    try:
        data = load_plain_yaml(header.group(1))
    except YamlError as error:
        raise BadCard(f"YAML header: {error}") from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise BadCard("YAML header: must be a mapping of fields")
    configs = data.get("configs") or []
    if not isinstance(configs, list):
        raise BadCard("configs: must be a list of subsets")
    for index, config in enumerate(configs):
        field = f"configs[{index}]"
        if not isinstance(config, dict):
            raise BadCard(f"{field}: must be a mapping with config_name and data_files")
        try:
            safe_name(config.get("config_name"), f"{field}.config_name")
        except UnsafeName as error:
            raise BadCard(str(error)) from None
        _data_files(config.get("data_files", []), f"{field}.data_files")
        if config.get("data_dir") is not None:
            _repo_file(config["data_dir"], f"{field}.data_dir")
    return configs


def checked_revision(repo_id: str, revision: str | None) -> str:
    """The commit `revision` of the dataset repo points at, once its card there is checked; `datasets` is then
    asked for that commit only, so the card it reads is the one checked. BadCard for a card it must not read; the
    Hub's own errors are raised as they come."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    commit = HfApi().dataset_info(repo_id, revision=revision).sha
    try:
        local = hf_hub_download(repo_id, CARD, repo_type="dataset", revision=commit)
    except EntryNotFoundError:
        return commit
    try:
        card_configs(Path(local).read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise BadCard(f"not UTF-8 text (byte {error.start})") from None
    return commit
