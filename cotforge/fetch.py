"""A corpus from wherever it lives, as a build directory: one already built, the paper's released files, or a Hub
repo (pulled once, then reused)."""

from __future__ import annotations

import os
from pathlib import Path

from cotforge.corpus import BuildDir
from cotforge.safety.names import safe_name


def pulled_dir(repo_id: str, purpose: str) -> Path:
    """Where a Hub corpus is pulled for `purpose` (view, score): one folder per repo in the user's cache. The id
    becomes one folder name: refused (UnsafeName), not rewritten, when it could not stay one."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "cotforge" / purpose / safe_name(repo_id.replace("/", "--"), "repo")


def fetch_corpus(dataset: str | Path, into: Path) -> BuildDir:
    """`dataset` itself when it is a build directory; else the corpus already fetched into `into`; else the paper's
    files in the folder `dataset` imported, or the Hub repo `dataset` pulled, into `into`. Raises HubError for a
    repo that cannot be pulled, FileNotFoundError/ValueError for a folder that is not the paper's files."""
    given = BuildDir(dataset)
    if given.is_build():
        return given
    fetched = BuildDir(into)
    if fetched.is_build():
        return fetched
    if given.path.is_dir():
        from cotforge.paper import import_paper

        import_paper(given.path, into)
        return fetched
    from cotforge.hub import check_repo_id
    from cotforge.hub_pull import pull_corpus, save_pulled

    check_repo_id(str(dataset))
    save_pulled(pull_corpus(str(dataset)), into)
    return fetched
