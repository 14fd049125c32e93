"""The model card of a student cotforge trained: what it was trained from and how, and how well it does."""

from __future__ import annotations

from typing import Any

# Where a run went rather than how it trained: left out of the card's settings table.
_NOT_SETTINGS = {"model", "dataset", "subset", "output_dir", "push_to_hub", "resume"}


def _settings_table(settings: dict[str, Any]) -> str:
    rows = [f"| `{name}` | `{value}` |" for name, value in settings.items() if name not in _NOT_SETTINGS]
    return "\n".join(["| setting | value |", "|---|---|", *rows])


def _accuracy(accuracy: dict[str, float] | None) -> str:
    if not accuracy:
        return "Not evaluated yet: `cotforge eval --model <this repo> --benchmark svamp --out <folder>`."
    rows = [f"| {benchmark} | {value:.1%} |" for benchmark, value in sorted(accuracy.items())]
    return "\n".join(["| benchmark | accuracy (greedy) |", "|---|---:|", *rows])


def subsets_trained(config: dict[str, Any]) -> str:
    """The subset, the mixture (`a:0.5 + b:0.5`) or `all`, as the card says what the student was trained on."""
    if config.get("mixture"):
        return " + ".join(f"{name}:{weight:g}" for name, weight in config["mixture"].items())
    return config.get("subset") or "all"


def render_model_card(
    repo_id: str,
    config: dict[str, Any],
    *,
    steps: int,
    examples: int,
    final_loss: float | None,
    accuracy: dict[str, float] | None = None,
    loss_curve: str | None = None,
) -> str:
    """The README.md of a student: `config` is its TrainConfig as train_report.json keeps it; `accuracy` the
    evaluation's per benchmark, when it was evaluated; `loss_curve` the plot's path in the repo."""
    base, dataset, trained_on = config["model"], config["dataset"], subsets_trained(config)
    library = "peft" if config.get("lora_rank") else "transformers"
    loss = f", final loss {final_loss:.4f}" if final_loss is not None else ""
    curve = f"\n![Training loss by optimizer step]({loss_curve})\n" if loss_curve else ""
    return f"""---
library_name: {library}
base_model: {base}
datasets:
- {dataset}
tags:
- cotforge
- chain-of-thought
- distillation
---

# {repo_id.rsplit("/", 1)[-1]}

`{base}` fine-tuned with [cotforge](https://arxiv.org/abs/2502.18001) on the chain-of-thought corpus `{dataset}`
(subset `{trained_on}`): {steps} optimizer steps over {examples} examples, loss on the completion only{loss}.
{"A LoRA adapter over the base (peft)." if library == "peft" else "Every parameter trained."} The full record of the
run is `train_report.json`.

## Evaluation

{_accuracy(accuracy)}

## Training
{curve}
{_settings_table(config)}
"""
