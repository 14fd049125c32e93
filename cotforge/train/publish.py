"""A trained student onto the Hub: its folder, with a model card, in one commit (through cotforge.hub)."""

from __future__ import annotations

import json

from cotforge.corpus import EvalDir, StudentDir
from cotforge.dataset_cards.model_card import render_model_card


def push_student(student: StudentDir, repo_id: str) -> str:
    """Push `student` (its weights, tokenizer, train_report.json, loss curve and a model card) to the model repo
    `repo_id`; the card's accuracy is the evaluation's when `cotforge eval --out` wrote one into the folder.
    Returns the commit. Raises HubError."""
    from cotforge.hub import push_model

    report = student.read_train_report()
    if report is None:
        raise ValueError(f"{student}: no train_report.json; only a student cotforge trained can be pushed this way")
    evaluation = EvalDir(student.path).report_path
    accuracy = json.loads(evaluation.read_text(encoding="utf-8"))["accuracy"] if evaluation.exists() else None
    history = report.get("history") or []
    card = render_model_card(
        repo_id,
        report["config"],
        steps=report["steps"],
        examples=report["examples"],
        final_loss=history[-1]["loss"] if history else None,
        accuracy=accuracy,
        loss_curve=student.loss_curve_path.name if student.loss_curve_path.exists() else None,
    )
    student.card_path.write_text(card, encoding="utf-8")
    return push_model(
        student.path, repo_id, ignore=[f"{student.checkpoints_dir.name}/*", f"{student.tokenized_dir.name}/*"]
    )
