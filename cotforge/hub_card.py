"""What `pull` asks the Hub for, and the card it reads first. A repo id is always the Hub's: `datasets` is given
`hf://datasets/<id>` at a fixed commit, so a local folder named like the repo is never read in its place. The repo's
card (README.md, and .huggingface.yaml beside it) is checked before `datasets` reads it: its YAML must be plain data
(no aliases, no tags) and its `configs` must name subsets by plain names and data files inside the repo, so a hostile
card is bad input that names the file and the field, never a fetch from elsewhere or a traceback."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from cotforge.corpus import HubLayout
from cotforge.safety.names import UnsafeName, safe_name
from cotforge.safety.yamltext import YamlError, load_plain_yaml

# The most configs a pulled card may list: `datasets` resolves them all again for each one it loads (work grows with
# their square). A cotforge card lists one per subset: 5 teachers x 7 levels x 3 formats x 4 data sets is 420.
MAX_CONFIGS = 500


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


def _fields(text: str, header: bool) -> dict[str, Any]:
    """The fields of a card's YAML header (`header`: found as huggingface_hub finds it), or of a YAML file."""
    if header:
        from huggingface_hub.repocard import REGEX_YAML_BLOCK  # the rule `datasets` reads the card by

        found = REGEX_YAML_BLOCK.search(text)
        if found is None:
            return {}
        text = found.group(2)
    try:
        data = load_plain_yaml(text)
    except YamlError as error:
        raise BadCard(f"YAML{' header' if header else ''}: {error}") from None
    if not isinstance(data, dict | None):
        raise BadCard(f"YAML{' header' if header else ''}: must be a mapping of fields")
    return data or {}


def _check_configs(configs: object) -> list[dict[str, Any]]:
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


def card_configs(text: str) -> list[dict[str, Any]]:
    """The configs a card declares (none without a header); BadCard when `datasets` must not read them."""
    try:
        return _check_configs(_fields(text, header=True).get("configs") or [])
    except BadCard as error:
        raise BadCard(f"{HubLayout.card}: {error}") from None


def checked_revision(repo_id: str, revision: str | None) -> str:
    """The commit `revision` of the dataset repo points at, once what `datasets` reads of it first is checked: the
    card's YAML header and the YAML beside it, whose fields replace the card's. `datasets` is then asked for that
    commit only, so it reads what was checked. BadCard names the file and the field; the Hub's errors are raised as they
    come."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    commit = HfApi().dataset_info(repo_id, revision=revision).sha
    fields: dict[str, Any] = {}
    configs_from = HubLayout.card
    for name in (HubLayout.card, HubLayout.card_yaml):
        try:
            local = hf_hub_download(repo_id, name, repo_type="dataset", revision=commit)
            with open(local, encoding="utf-8", newline="") as file:  # as huggingface_hub reads it
                part = _fields(file.read(), header=name == HubLayout.card)
        except EntryNotFoundError:
            continue
        except UnicodeDecodeError as error:
            raise BadCard(f"{name}: not UTF-8 text (byte {error.start})") from None
        except BadCard as error:
            raise BadCard(f"{name}: {error}") from None
        fields |= part
        configs_from = name if "configs" in part else configs_from
    configs = fields.get("configs") or []
    if isinstance(configs, list) and len(configs) > MAX_CONFIGS:  # before any is checked, let alone read
        raise BadCard(
            f"{configs_from} lists {len(configs):,} configs; cotforge pulls a card of at most {MAX_CONFIGS:,} "
            "(one per subset), so this repo is refused"
        )
    try:
        _check_configs(configs)
    except BadCard as error:
        raise BadCard(f"{configs_from}: {error}") from None
    return commit
