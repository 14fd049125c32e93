"""Checkpoints and the saved student, for a plain, DDP, FSDP2 or LoRA run in one place.

A checkpoint is StudentDir.checkpoint(step): state.pt holds the scheduler, the RNG (the GPU's too), the step and
the history, and, unless the model is sharded, the weights (a LoRA run's trainable ones only) and the optimizer; a
sharded (FSDP2) run writes each rank's shards beside it (sharding.py). state.pt is written last and atomically, and
read without running code (weights_only): a checkpoint whose state loads is complete, and a damaged one (a kill or
a full disk) is skipped for the one before, with a word in the log. The saved student is the model (or its adapter),
its tokenizer, train_report.json, the loss curve and, with merge_lora, merged/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cotforge.corpus import StudentDir
from cotforge.corpus.studentdir import CHECKPOINT_STATE_FILE
from cotforge.safety.atomic import atomic_path
from cotforge.train import adapters, sharding
from cotforge.train.config import TrainConfig


def save_state(folder: Path, state: dict[str, Any]) -> None:
    """The run's state (plain tensors, numbers, lists and dicts), synced and renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / CHECKPOINT_STATE_FILE) as partial:
        torch.save(state, partial)


def load_state(path: Path) -> dict[str, Any]:
    """A state file, read with weights_only (a file planted in the output folder cannot run code), onto the CPU
    (not every rank's onto GPU 0)."""
    return torch.load(path, weights_only=True, map_location="cpu")


def newest_state(student: StudentDir, log: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint whose state loads, and that state; damaged ones are named in the log and skipped."""
    for folder in reversed(student.checkpoints()):
        try:
            return folder, load_state(folder / CHECKPOINT_STATE_FILE)
        except Exception as error:  # torn, truncated, missing, or a pickle that is not plain data
            why = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            log(f"checkpoint {folder} cannot be read ({why}); trying the one before it")
    return None


@dataclass
class Checkpoints:
    """Saving and resuming one run's state; `model` is the student (peft-wrapped for LoRA), `root` what was
    sharded (the loss module) when `sharded`."""

    student: StudentDir
    model: Any
    root: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    lora: bool
    sharded: bool
    main: bool  # rank 0: the one that writes what every rank holds alike
    device: torch.device

    def _weights(self) -> dict[str, Any]:
        if self.sharded:  # in the shards sharding.save_checkpoint wrote
            return {}
        kept = adapters.trainable_state(self.model) if self.lora else self.model.state_dict()
        return {"model": kept, "optimizer": self.optimizer.state_dict()}

    def save(self, step: int, history: list[dict[str, Any]]) -> None:
        folder = self.student.checkpoint(step)
        if self.sharded:  # every rank writes its shards; the rest is the same on every rank
            sharding.save_checkpoint(folder, self.root, self.optimizer)
        if self.main:
            state: dict[str, Any] = {"scheduler": self.scheduler.state_dict(), "rng": torch.get_rng_state()}
            if self.device.type == "cuda":  # dropout on the GPU draws from its own generator
                state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
            save_state(folder, {**self._weights(), **state, "step": step, "history": history})

    def resume(self, log: Callable[[str], None]) -> tuple[int, list[dict[str, Any]], str] | None:
        """Load the newest complete checkpoint; its step, history and folder, or None when there is none."""
        found = newest_state(self.student, log)
        if found is None:
            return None
        last, state = found
        if self.sharded:
            sharding.load_checkpoint(last, self.root, self.optimizer)
        elif self.lora:
            adapters.load_trainable_state(self.model, state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        else:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        return state["step"], state["history"], str(last)

    def final_weights(self) -> dict[str, torch.Tensor] | None:
        """The whole model's state gathered from the shards (every rank takes part); None when not sharded."""
        if not self.sharded:
            return None
        return sharding.full_state_dict(self.root, "model.", adapters.PEFT_ROOT if self.lora else "")


def save_student(
    model: Any,
    tokenizer: Any,
    config: TrainConfig,
    report: dict[str, Any],
    output: StudentDir,
    weights: dict[str, torch.Tensor] | None = None,
) -> None:
    """The student, its tokenizer, train_report.json (`report`) and loss curve; `weights`: the gathered state of a
    sharded model."""
    output.path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output.path, state_dict=weights)  # a peft model saves its adapter only
    tokenizer.save_pretrained(output.path)
    folders = [output]
    if config.output.merge_lora:  # the merged student carries the report too: `eval` reads its template there
        folders.append(StudentDir(adapters.save_merged(config, output.path, tokenizer)))
    for folder in folders:
        folder.write_train_report(report)
    _loss_curve([h["step"] for h in report["history"]], [h["loss"] for h in report["history"]], output)


def _loss_curve(steps: list[int], losses: list[float], output: StudentDir) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.plot(steps, losses)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (completion tokens)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(output.loss_curve_path)
    plt.close(figure)
