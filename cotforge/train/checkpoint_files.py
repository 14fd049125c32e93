"""Checkpoint files another run trusts: written atomically, read without running code, and a damaged one (a
kill or a full disk while an older version wrote it) skipped for the one before, with a word in the log."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cotforge.safety.atomic import atomic_path

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.pt"
_STEP = re.compile(r"^step-(\d+)$")


def checkpoint_folder(output: Path, step: int) -> Path:
    return output / CHECKPOINTS / f"step-{step}"


def checkpoint_folders(output: Path) -> list[Path]:
    """`step-N` folders, oldest first (temporary names and anything else there are not checkpoints)."""
    folder = output / CHECKPOINTS
    found = [p for p in folder.iterdir() if _STEP.match(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def save_state(folder: Path, state: dict[str, Any]) -> None:
    """The run's state (plain tensors, numbers, lists and dicts), synced and renamed into place: written last, so
    a checkpoint whose state loads is complete."""
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / STATE_FILE) as partial:
        torch.save(state, partial)


def load_state(path: Path) -> dict[str, Any]:
    """A state file, read with weights_only: a file planted in the output folder cannot run code."""
    return torch.load(path, weights_only=True, map_location="cpu")


def newest_state(output: Path, log: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint whose state loads, and that state; damaged ones are named in the log and skipped."""
    for folder in reversed(checkpoint_folders(output)):
        try:
            return folder, load_state(folder / STATE_FILE)
        except Exception as error:  # torn, truncated, missing, or a pickle that is not plain data
            why = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            log(f"checkpoint {folder} cannot be read ({why}); trying the one before it")
    return None
