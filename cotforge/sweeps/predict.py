"""`cotforge sweep --predict` and `--prune K`: before any cell trains, every arm's training records scored under
every student (cotforge.suitability: the Rank-Surprisal Ratio, arXiv 2601.14249, and its two baselines), the
predicted order printed (lowest RSR first), and with --prune only the K best-scored arms of each student trained
(the answer-only and human baselines always). An arm selected by score (`--select rsr:0.5`, arm@rsr-0.5) gets its
part of the records here, per student, from the same scores. agreement.py sets each arm's scores beside its measured
accuracy.

Every record any arm trains on is written once into one build directory in the sweep folder and scored there, so a
mixture arm's records are its parts' very records and are scored once, and a re-run or another shard reuses every
score (the score store is keyed by record and student)."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from cotforge.corpus import BuildDir, BuildDirError
from cotforge.quality.rsr import RecordScore, ScoredBy, subset_suitability
from cotforge.quality.selection import UnscoredRecords
from cotforge.schemas.record import CoTRecord
from cotforge.sweeps.adaptive import SkippedCell
from cotforge.sweeps.files import write_model
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.planning import BASELINES, SweepPlan
from cotforge.sweeps.settings import SweepError

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
    from cotforge.quality.scores import ScoreStore
    from cotforge.safety.lock import DirectoryInUse
    from cotforge.suitability import score_build
    from cotforge.train.student import StudentError

    s, t = plan.settings, plan.settings.rendering
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
        except DirectoryInUse as error:  # shards started together: the first scores, the others are refused
            raise SweepError(
                f"--predict: {error}; with --shard, score the arms once first (the same command with --dry-run)"
            ) from None
        scored_by[student] = report.scored_by
        done = ScoreStore(data).read(report.scored_by)
        plan.selected[student] = select_arms(plan, student, done)
        for arm in plan.arms:
            rows = plan.records(student, arm)
            found = subset_suitability(report.scored_by, (done[r.key] for r in rows if r.key in done), 0)
            figures = found.model_dump(include={"records", "tokens", *SCORES})
            arms.append(ArmScore(student=student, arm=arm.label, **figures))
        log(
            f"scored {report.scored_by.student}: {report.scored} records ({report.reused} already scored) in "
            f"{report.wall_time_s:.1f} s"
        )
    prediction = Prediction(scored_by=scored_by, arms=arms)
    write_model(sweep.predicted_path, prediction)
    for line in describe_prediction(plan, prediction):
        log(line)
    return prediction


def select_arms(plan: SweepPlan, student: str, scores: dict[str, RecordScore]) -> dict[str, list[CoTRecord]]:
    """arm label -> the records each arm selected by score keeps under `student` (`--select rsr:0.5`); SweepError
    when some were not scored (a prompt that alone fills max_length is never scored)."""
    kept = {}
    for arm in plan.arms:
        if arm.selection is not None and arm.selection.needs_scores:
            try:
                kept[arm.label] = arm.selection.apply(arm.label, plan.train[arm.label], scores)
            except UnscoredRecords as error:
                raise SweepError(
                    f"--select {arm.selection.text}: {error} under {student} (their prompt alone fills max_length); "
                    "raise --max-length, or select without scores (random)"
                ) from None
    return kept


def figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def describe_prediction(plan: SweepPlan, prediction: Prediction) -> list[str]:
    """Per student, the arms in predicted order with their three scores."""
    lines = []
    for student in plan.settings.students:
        lines.append(f"predicted order for {prediction.scored_by[student].student}, lowest RSR first:")
        lines += [
            f"  {n}. {a.arm}: RSR {figure(a.rsr)}, mean surprisal {figure(a.mean_surprisal)}, mean rank "
            f"{figure(a.mean_rank)} ({a.records} records, {a.tokens:,} tokens)"
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
            a.arm: f"--prune {keep}: predicted {n} of {len(ranked)} scored arms (RSR {figure(a.rsr)}); only the "
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
