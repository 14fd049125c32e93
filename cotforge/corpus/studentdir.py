"""The student directory: the one place that knows its layout. `cotforge train` writes it; eval, the sweep and the
model push read it, always through `StudentDir`.

<dir>/config.json, model.safetensors, tokenizer*   the student (or adapter_config.json + adapter weights: LoRA)
<dir>/train_report.json                           the run: its TrainConfig, chat template, history, memory
<dir>/loss_curve.png                              the loss by optimizer step
<dir>/merged/                                     a LoRA run's base with the adapter folded in (a StudentDir too)
<dir>/checkpoints/step-N/state.pt                 resumable checkpoints (--save-every; train/checkpoint.py)
<dir>/tokenized/                                  the tokenized corpus, reused by a resumed run
An evaluation's folder (`cotforge eval --out`) holds predictions.parquet and eval_report.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cotforge.corpus.folder import Folder
from cotforge.corpus.hublayout import HubLayout

TRAIN_REPORT_FILE = "train_report.json"
LOSS_CURVE_FILE = "loss_curve.png"
ADAPTER_CONFIG_FILE = "adapter_config.json"
MERGED_DIR = "merged"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_STATE_FILE = "state.pt"  # in each checkpoint: step, scheduler, RNG, history (and unsharded weights)
TOKENIZED_DIR = "tokenized"
PREDICTIONS_FILE = "predictions.parquet"
EVAL_REPORT_FILE = "eval_report.json"
CARD_FILE = HubLayout.card  # a model repo's card, as a dataset repo's


class StudentDir(Folder):
    """A student directory at `path` (which need not exist yet)."""

    @property
    def train_report_path(self) -> Path:
        return self.path / TRAIN_REPORT_FILE

    @property
    def loss_curve_path(self) -> Path:
        return self.path / LOSS_CURVE_FILE

    @property
    def card_path(self) -> Path:
        return self.path / CARD_FILE

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def tokenized_dir(self) -> Path:
        return self.path / TOKENIZED_DIR

    @property
    def merged(self) -> StudentDir:
        return StudentDir(self.path / MERGED_DIR)

    @property
    def is_adapter(self) -> bool:
        """A LoRA folder: transformers loads it over its base through peft."""
        return (self.path / ADAPTER_CONFIG_FILE).exists()

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step}"

    def checkpoints(self) -> list[Path]:
        """The checkpoints saved so far, oldest first (`step-N` folders; a temporary name is not one)."""
        found = self.checkpoints_dir.iterdir() if self.checkpoints_dir.is_dir() else []
        steps = [path for path in found if re.fullmatch(r"step-\d+", path.name)]
        return sorted(steps, key=lambda path: int(path.name.split("-")[1]))

    def write_train_report(self, body: dict[str, Any]) -> None:
        self.train_report_path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")

    def read_train_report(self) -> dict[str, Any] | None:
        """The report of the run that made this student; None for a student cotforge did not train."""
        if not self.train_report_path.exists():
            return None
        return json.loads(self.train_report_path.read_text(encoding="utf-8"))

    def trained_template(self) -> str | None:
        """The chat template the student was trained with, when cotforge trained it."""
        report = self.read_train_report()
        return None if report is None else report["template"]


class EvalDir(Folder):
    """Where `cotforge eval --out` (and each sweep cell) writes its predictions and report."""

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS_FILE

    @property
    def report_path(self) -> Path:
        return self.path / EVAL_REPORT_FILE
