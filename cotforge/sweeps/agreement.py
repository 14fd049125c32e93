"""How well the scores predicted before training (sweeps.predict) ranked each student's arms: each arm's scores
beside its measured accuracy in the report, and per student and score Spearman's rho with a bootstrap interval."""

from __future__ import annotations

from collections.abc import Callable

from cotforge.sweeps.files import read_model
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.predict import SCORES, Prediction, figure
from cotforge.sweeps.results import MIN_RANKED_ARMS, ArmResult, ScoreAgreement
from cotforge.sweeps.signals import RESAMPLES, correlation_over


def score_agreement(prediction: Prediction, accuracy: dict[tuple[str, str], float]) -> list[ScoreAgreement]:
    """Per student and score, rho over the arms that have both; `accuracy` is (student, arm) -> accuracy."""
    found = []
    for student in prediction.scored_by:
        for score in SCORES:
            pairs = [
                (-value, accuracy[(student, a.arm)])
                for a in prediction.arms
                if a.student == student and (student, a.arm) in accuracy and (value := getattr(a, score)) is not None
            ]
            rho, interval = correlation_over(pairs, MIN_RANKED_ARMS)
            found.append(ScoreAgreement(student=student, score=score, arms=len(pairs), spearman=rho, interval=interval))
    return found


def with_prediction(sweep: SweepDir, arms: list[ArmResult]) -> tuple[list[ArmResult], list[ScoreAgreement]]:
    """The arms with their scores from predicted.json, and each score's agreement with their accuracy; the arms
    alone when the sweep predicted nothing."""
    if not sweep.predicted_path.exists():
        return arms, []
    advice = "run the sweep again with --predict (finished cells are kept) to rewrite it"
    prediction = read_model(sweep.predicted_path, Prediction, advice)
    scores = {(a.student, a.arm): a.model_dump(include=set(SCORES)) for a in prediction.arms}
    with_scores = [a.model_copy(update=scores.get((a.student, a.arm), {})) for a in arms]
    return with_scores, score_agreement(prediction, {(a.student, a.arm): a.accuracy for a in arms})


def prediction_markdown(
    arms: list[ArmResult], agreement: list[ScoreAgreement], label: Callable[[str], str]
) -> list[str]:
    """The report's section: each arm's scores beside its accuracy, then rho per student and score."""
    lines = [
        "## Predicted before training (`--predict`)",
        "",
        "Each trained arm's training records scored under the student before any cell trained: the Rank-Surprisal "
        "Ratio (arXiv 2601.14249) and its two baselines, mean surprisal (nats) and mean clipped rank; lower is "
        "predicted to suit the student better.",
        "",
        "| student | arm | accuracy | RSR | mean surprisal | mean rank |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {label(a.student)} | {a.arm} | {a.accuracy:.1%} | {figure(a.rsr)} | {figure(a.mean_surprisal)} | "
        f"{figure(a.mean_rank)} |"
        for a in arms
    ]
    lines += [
        "",
        "Spearman's rho of each score against the measured accuracy over a student's arms (the arms column: how many)."
        " Each score is negated first, since lower predicts better, so +1 means the score ordered the arms exactly as "
        f"training did; the interval resamples arms in pairs ({RESAMPLES:,} draws). With fewer than {MIN_RANKED_ARMS} "
        "arms rho is not informative and is not given; '-': every arm scored or measured alike.",
        "",
        "| student | score | arms | Spearman rho | 95% bootstrap interval |",
        "|---|---|---:|---:|---|",
    ]
    for a in agreement:
        rho = "not informative" if a.spearman is None and a.arms < MIN_RANKED_ARMS else _signed(a.spearman)
        interval = "-" if a.interval is None else f"{a.interval[0]:+.2f} to {a.interval[1]:+.2f}"
        lines.append(f"| {label(a.student)} | {SCORES[a.score]} | {a.arms} | {rho} | {interval} |")
    return lines


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"
