"""`cotforge sweep --predict` and `--prune K`: before any cell trains, every arm's training records scored under
every student (cotforge.suitability: the Rank-Surprisal Ratio, arXiv 2601.14249, and its two baselines), the
predicted order printed (lowest RSR first), and with --prune only the K best-scored arms of each student trained
(the answer-only and human baselines always). The report sets each arm's scores beside its measured accuracy.

Every record any arm trains on is written once into one build directory in the sweep folder and scored there, so a
mixture arm's records are its parts' very records and are scored once, and a re-run or another shard reuses every
score (the score store is keyed by record and student)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from cotforge.corpus import BuildDir, BuildDirError
from cotforge.quality.rsr import ScoredBy, subset_suitability
from cotforge.sweeps.adaptive import SkippedCell
from cotforge.sweeps.files import read_model, write_model
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.planning import BASELINES, SweepPlan
from cotforge.sweeps.settings import SweepError
from cotforge.sweeps.signals import RESAMPLES, correlation_over

if TYPE_CHECKING:  # results.py imports this module's ScoreAgreement
    from cotforge.sweeps.results import ArmResult

MIN_RANKED_ARMS = 4  # fewer arms give a rank correlation too few orders to mean anything
SCORES = {"rsr": "RSR", "mean_surprisal": "mean surprisal", "mean_rank": "mean rank"}  # all: lower predicts better


class ArmScore(BaseModel):
    """One arm's training records under one student, as a data set (quality.rsr.subset_suitability)."""

    student: str
    arm: str
    records: int = Field(description="Records scored (those whose prompt alone fills max_length are not)")
    tokens: int
    rsr: float | None
    mean_surprisal: float | None
    mean_rank: float | None


class Prediction(BaseModel):
    """predicted.json: every arm's scores under every student, and who scored them."""

    scored_by: dict[str, ScoredBy] = Field(description="Per student (as the sweep names it): weights and rendering")
    arms: list[ArmScore]

    def order(self, student: str) -> list[ArmScore]:
        """The student's arms, predicted best (lowest RSR) first; an arm without an RSR last."""
        mine = [a for a in self.arms if a.student == student]
        return sorted(mine, key=lambda a: (a.rsr is None, a.rsr or 0.0, a.arm))


def predict_arms(plan: SweepPlan, sweep: SweepDir, log: Callable[[str], None]) -> Prediction:
    """Score every arm's training records under every student (see the module's docstring), write predicted.json
    and log each student's predicted order. Raises SweepError (a student or rendering the scorer refuses)."""
    from cotforge.suitability import score_build
    from cotforge.suitability.store import ScoreStore
    from cotforge.train.student import StudentError

    s, t = plan.settings, plan.settings.train
    data = BuildDir(sweep.predict_dir)
    unique = {r.key: r for rows in plan.train.values() for r in rows}
    data.write_outputs(unique.values(), [])
    scored_by: dict[str, ScoredBy] = {}
    arms: list[ArmScore] = []
    for student in s.students:
        model, gguf_file = s.student_source(student)
        try:
            report = score_build(
                data, model, gguf_file=gguf_file, template=t.template, reasoning=t.reasoning, max_length=t.max_length
            )
        except (BuildDirError, StudentError, ValueError) as error:
            raise SweepError(f"--predict: {student}: {error}") from None
        scored_by[student] = report.scored_by
        done = ScoreStore(data).read(report.scored_by)
        for label, rows in plan.train.items():
            found = subset_suitability(report.scored_by, (done[r.key] for r in rows if r.key in done), 0)
            arms.append(
                ArmScore(
                    student=student,
                    arm=label,
                    records=found.records,
                    tokens=found.tokens,
                    rsr=found.rsr,
                    mean_surprisal=found.mean_surprisal,
                    mean_rank=found.mean_rank,
                )
            )
        log(
            f"predicted order for {report.scored_by.student} ({report.scored} records scored, {report.reused} "
            f"already scored, {report.wall_time_s:.1f} s), lowest RSR first:"
        )
    prediction = Prediction(scored_by=scored_by, arms=arms)
    write_model(sweep.predicted_path, prediction)
    for line in describe_prediction(plan, prediction):
        log(line)
    return prediction


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def describe_prediction(plan: SweepPlan, prediction: Prediction) -> list[str]:
    """Per student, the arms in predicted order with their three scores."""
    lines = []
    for student in plan.settings.students:
        lines.append(f"predicted order for {prediction.scored_by[student].student}, lowest RSR first:")
        lines += [
            f"  {n}. {a.arm}: RSR {_figure(a.rsr)}, mean surprisal {_figure(a.mean_surprisal)}, mean rank "
            f"{_figure(a.mean_rank)} ({a.records} records, {a.tokens:,} tokens)"
            for n, a in enumerate(prediction.order(student), 1)
        ]
    return lines


def pruned_cells(plan: SweepPlan, prediction: Prediction, keep: int) -> list[SkippedCell]:
    """The cells --prune `keep` does not train: per student, every seed of each arm outside the `keep` lowest RSRs
    but the baselines (answer-only, human), which are always trained."""
    skipped = []
    for student in plan.settings.students:
        ranked = [a for a in prediction.order(student) if a.arm not in BASELINES]
        why = {
            a.arm: f"--prune {keep}: predicted {n} of {len(ranked)} scored arms (RSR {_figure(a.rsr)}); only the "
            f"{keep} lowest are trained, with the baselines"
            for n, a in enumerate(ranked, 1)
            if n > keep
        }
        skipped += [
            SkippedCell(name=c.name, student=student, arm=c.arm.label, seed=c.seed, reason=why[c.arm.label])
            for c in plan.cells
            if c.student == student and c.arm.label in why
        ]
    return skipped


def predict_and_prune(plan: SweepPlan, sweep: SweepDir, log: Callable[[str], None]) -> list[SkippedCell]:
    """Score and print every arm (predict_arms); the cells --prune leaves out (none without it)."""
    prediction = predict_arms(plan, sweep, log)
    keep = plan.settings.prune
    return [] if keep is None else pruned_cells(plan, prediction, keep)


class ScoreAgreement(BaseModel):
    """How well one score ranked one student's arms as training then did."""

    student: str
    score: str  # rsr, mean_surprisal or mean_rank
    arms: int = Field(description="Arms with both a score and a measured accuracy")
    spearman: float | None = Field(
        description="Spearman's rho of the negated score (lower predicts better) against accuracy: +1, the score's "
        f"order is the accuracy's; none with fewer than {MIN_RANKED_ARMS} arms or a constant side"
    )
    interval: tuple[float, float] | None = Field(description="95% bootstrap interval, arms resampled in pairs")


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
        "| student | arm | accuracy | RSR | mean surprisal | mean rank |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {label(a.student)} | {a.arm} | {a.accuracy:.1%} | {_figure(a.rsr)} | {_figure(a.mean_surprisal)} | "
        f"{_figure(a.mean_rank)} |"
        for a in arms
    ]
    lines += [
        "",
        "Predicted before training (`--predict`): Spearman's rho of each score against the measured accuracy over a "
        "student's arms. Each score is negated first (lower RSR, surprisal or rank predicts better), so +1 means "
        "the score ordered the arms exactly as training did; the interval resamples arms in pairs "
        f"({RESAMPLES:,} draws). "
        f"With fewer than {MIN_RANKED_ARMS} arms rho is not informative and is not given.",
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
