"""`cotforge sweep`: which granularity (or format, or teacher) suits this student?

One cell per (student, arm, seed): an arm is one subset of the corpus (a level, a format or a teacher; the paper's
answer-only and human baselines when present). Every cell trains on the same problems with the same settings and
step budget, and is evaluated on the same held-out questions, never seen in training (nor any near-variant of them).
A cell's `cell.json` is its record: a re-run skips finished cells, and `--shard i/N` runs a slice so a job array
runs them in parallel. The report (report.py) says which arms could be the best, and how sure that is.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from cotforge.contamination import check, normalise_question
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.quality.selection import Selection
from cotforge.schemas.problem import Problem
from cotforge.schemas.recipe import FormatMode, SourceSpec
from cotforge.schemas.record import CoTRecord
from cotforge.sweeps.arms import arm_subsets, mixed_rows, parse_arm
from cotforge.sweeps.files import HeldOut
from cotforge.sweeps.holdout import highest_similarity, near_variants, numbered, split_by_groups
from cotforge.sweeps.power import PLANNING_QUESTION_CORRELATION, planned_pair_se, power_sentence
from cotforge.sweeps.settings import SweepError, SweepSettings
from cotforge.sweeps.statistics import run_share
from cotforge.train.config import model_label

BASELINES = {"answer-only": 0, "human": None}  # the paper's baselines: teacher label -> the level they stand for


class Arm(BaseModel):
    """One value of the varied axis: a subset of the corpus."""

    model_config = ConfigDict(frozen=True)

    label: str  # g5, human, answer-only, rar, gpt-4o, native, condensed-g3, native-0.5+g3-0.5 ...
    subset: str  # a mixture's: its subsets and shares, "a:0.5+b:0.5"
    level: int | None  # where it sits on the granularity axis (answer-only: 0; human, native, mixtures: none)
    kind: str = "prompted"  # prompted, baseline, native, condensed or mixture (cotforge.sweeps.arms)
    shares: dict[str, float] | None = None  # a mixture's subsets and their shares
    selection: Selection | None = None  # the part of the arm's records it keeps (label: base@selection)


def selected_arms(arms: list[Arm], selections: list[Selection]) -> list[Arm]:
    """Each arm whole, then one arm per selection of its records (`--select`), named arm@selection: off the
    granularity axis (level none), as its records are not the level's."""
    return [
        arm.model_copy(update={"label": f"{arm.label}@{s.label}", "level": None, "selection": s}) if s else arm
        for arm in arms
        for s in [None, *selections]
    ]


def student_label(student: str, settings: SweepSettings) -> str:
    """A short name for a student (cotforge.train.config.model_label)."""
    return model_label(*settings.student_source(student))


class Cell(BaseModel):
    """One run: a student trained on an arm with a seed."""

    model_config = ConfigDict(frozen=True)

    student: str
    arm: Arm
    seed: int
    label: str  # the student's short name

    @property
    def name(self) -> str:
        return f"{self.label}--{self.arm.label}--seed{self.seed}"


@dataclass
class SweepPlan:
    settings: SweepSettings
    arms: list[Arm]
    train: dict[str, list[CoTRecord]]  # arm label -> one record per training problem, the same problems in each
    test: list[Problem]
    held_out: dict[str, int | float]  # what the held-out check found
    # One per test problem, in their order: equal numbers, one group of near-variants (none for an external --eval)
    question_groups: list[int] | None = None
    # student -> arm label -> the records a score-selected arm keeps for that student (sweeps.predict fills it)
    selected: dict[str, dict[str, list[CoTRecord]]] = field(default_factory=dict)

    @property
    def selects_by_score(self) -> bool:
        """Whether an arm keeps the part of its records a student's scores choose: the arms are scored first."""
        return any(arm.selection is not None and arm.selection.needs_scores for arm in self.arms)

    def records(self, student: str, arm: Arm) -> list[CoTRecord]:
        """What a cell of `student` on `arm` trains on: the arm's records, or the part its selection keeps
        (SweepError for a score selection not yet made: the arms are scored first)."""
        pool = self.train[arm.label]
        if arm.selection is None:
            return pool
        if not arm.selection.needs_scores:
            return arm.selection.apply(arm.label, pool)
        kept = self.selected.get(student, {}).get(arm.label)
        if kept is None:
            raise SweepError(f"arm {arm.label}: {student} has not scored its records; the sweep scores them first")
        return kept

    @property
    def cells(self) -> list[Cell]:
        s = self.settings
        # Seed-major: every arm of every student has its first seed before any has its second, so a sweep stopped
        # half-way still compares every arm.
        return [
            Cell(student=student, arm=arm, seed=seed, label=student_label(student, s))
            for seed in s.seeds
            for student in s.students
            for arm in self.arms
        ]

    def steps(self) -> int:
        """The step budget every cell gets: one example per row, so it depends only on the shared problems."""
        t = self.settings.optimisation
        if t.max_steps is not None:
            return t.max_steps
        problems = len(next(iter(self.train.values())))
        return max(1, math.ceil(t.epochs * problems / t.global_batch_size))


def _describe(records: list[CoTRecord]) -> tuple[str, int | None, str]:
    first = records[0]
    return first.teacher, first.granularity, first.format.value


def choose_arms(subsets: dict[str, list[CoTRecord]], settings: SweepSettings) -> list[Arm]:
    """The subsets that differ only in the varied axis, plus the baselines when varying granularity; or the arms
    named with --arm."""
    described = {name: _describe(rows) for name, rows in subsets.items() if rows}
    teachers = {t for t, _, _ in described.values() if t not in BASELINES}
    if settings.arms is not None:
        return _named_arms(settings, described, teachers)
    # The default axes hold prompted subsets only: native traces and condensed levels are named with --arm.
    traced = (FormatMode.native, FormatMode.condensed)
    described = {name: d for name, d in described.items() if subsets[name][0].format_mode not in traced}
    if settings.vary == "granularity":
        fmt = settings.format or "cot"
        by_teacher = Counter(
            t for t, level, f in described.values() if f == fmt and level is not None and t in teachers
        )
        teacher = settings.teacher or (min(by_teacher, key=lambda t: (-by_teacher[t], t)) if by_teacher else None)
        arms = [
            Arm(label=f"g{level}", subset=name, level=level)
            for name, (t, level, f) in described.items()
            if t == teacher and f == fmt and level is not None and (settings.levels is None or level in settings.levels)
        ]
        if settings.baselines:
            arms += [
                Arm(label=t, subset=name, level=BASELINES[t])
                for name, (t, _, f) in described.items()
                if t in BASELINES
                and f == fmt
                and (settings.levels is None or BASELINES[t] is None or 0 in settings.levels)
            ]
        arms.sort(key=lambda a: (a.level is None, a.level or 0, a.label))
        what = f"teacher {teacher}, format {fmt}"
    else:
        fixed_level = settings.level
        if settings.vary == "format":
            teacher = settings.teacher or (sorted(teachers)[0] if teachers else None)
            levels = Counter(level for t, level, _ in described.values() if t == teacher)
            fixed_level = fixed_level if fixed_level is not None else max(levels, key=lambda v: (levels[v], v or 0))
            arms = [
                Arm(label=f, subset=name, level=level)
                for name, (t, level, f) in described.items()
                if t == teacher and level == fixed_level
            ]
            what = f"teacher {teacher}, level {fixed_level}"
        else:
            fmt = settings.format or "cot"
            fixed_level = fixed_level if fixed_level is not None else 5
            arms = [
                Arm(label=t, subset=name, level=level)
                for name, (t, level, f) in described.items()
                if t in teachers and f == fmt and level == fixed_level
            ]
            what = f"level {fixed_level}, format {fmt}"
        arms.sort(key=lambda a: a.label)
    if len(arms) < 2:
        raise SweepError(
            f"--vary {settings.vary}: the corpus has {len(arms)} subset(s) for {what} "
            f"(its subsets: {', '.join(sorted(subsets))}); a sweep compares at least two"
        )
    return arms


def _named_arms(settings: SweepSettings, described: dict[str, tuple], teachers: set[str]) -> list[Arm]:
    """The --arm arms, of --teacher or else of the teacher with most subsets among those that have them all."""
    specs = [parse_arm(text) for text in settings.arms or []]
    fmt = settings.format or "cot"
    counts = Counter(t for t, _, _ in described.values() if t in teachers)
    candidates = [settings.teacher] if settings.teacher else sorted(counts, key=lambda t: (-counts[t], t))
    refusals = []
    for teacher in candidates:
        try:
            resolved = [(spec, arm_subsets(spec, teacher, fmt, described)) for spec in specs]
            break
        except SweepError as error:
            refusals.append(error)
    else:  # the refusal for the teacher with most subsets names what is missing
        raise refusals[0] if refusals else SweepError("--arm: the corpus has no teacher's subsets")
    arms = []
    for spec, shares in resolved:
        if len(shares) > 1:
            subset, mixture = "+".join(f"{name}:{share:g}" for name, share in shares.items()), shares
        else:
            subset, mixture = next(iter(shares)), None
        arms.append(Arm(label=spec.label, subset=subset, level=spec.level, kind=spec.kind, shares=mixture))
    return arms


def arm_rows(arm: Arm, subsets: dict[str, list[CoTRecord]]) -> dict[str, CoTRecord]:
    """problem id -> the arm's one rationale for it (a mixture's, from one of its parts)."""

    def first(subset: str) -> dict[str, CoTRecord]:
        rows: dict[str, CoTRecord] = {}
        for record in subsets[subset]:
            rows.setdefault(record.problem_id, record)  # one rationale per problem in every arm
        return rows

    if arm.shares is None:
        return first(arm.subset)
    return mixed_rows({subset: first(subset) for subset in arm.shares}, arm.shares)


@dataclass
class _Drawn:
    """The questions held out before the overlap check: the test problems, the training ids left, and for a
    hold-out drawn by groups its groups, the near-variants it left out of training and its figures."""

    test: list[Problem]
    train_ids: set[str]
    question_groups: list[int] | None = None
    near_dropped: set[str] = field(default_factory=set)
    groups: dict[str, int] = field(default_factory=dict)


def _draw(settings: SweepSettings, shared: list[str], any_arm: dict[str, CoTRecord]) -> _Drawn:
    """An external benchmark's problems (--eval), or a share of the corpus's questions drawn by groups of
    near-variants (--holdout)."""
    threshold = settings.holdout_similarity
    if settings.eval_benchmark is not None:
        from cotforge.recipes.sources import load_problems

        test = load_problems(
            SourceSpec(dataset=settings.eval_benchmark, split=settings.eval_split), limit=settings.eval_limit
        ).problems
        return _Drawn(test, set(shared))
    assert settings.holdout is not None
    split = split_by_groups(
        shared, [any_arm[i].question for i in shared], settings.holdout, settings.eval_limit, threshold
    )
    if not split.held_out:
        raise SweepError(
            f"--holdout {settings.holdout:g}: no group of near-variant questions fits in it (its "
            f"{split.groups_too_big} groups at similarity {threshold:g} are all larger; the largest family holds "
            f"{split.largest_group} of {len(shared)} questions); raise --holdout-similarity or --holdout, or "
            "evaluate on another data set with --eval"
        )
    groups = {
        "near_variant_groups": split.groups,
        "largest_group": split.largest_group,
        "families_split": split.families_split,
        "groups_too_big": split.groups_too_big,
        "questions_too_big": split.questions_too_big,
    }
    test = [any_arm[i].problem() for i in split.held_out]
    return _Drawn(test, set(split.training), split.held_out_groups, set(split.near_training), groups)


def plan_sweep(settings: SweepSettings, drawn: HeldOut | None = None) -> SweepPlan:
    """Arms, the problems every arm trains on, and the held-out questions none of them sees: those `drawn` earlier
    (a resumed sweep's held_out.json, cells.drawn_hold_out) when given."""
    try:
        subsets = BuildDir(settings.corpus).read_subsets()
    except BuildDirError as error:
        raise SweepError(str(error)) from None
    datasets = {r.dataset for rows in subsets.values() for r in rows}
    if len(datasets) > 1:
        raise SweepError(f"{settings.corpus}: holds {', '.join(sorted(datasets))}; a sweep studies one data set")
    arms = selected_arms(choose_arms(subsets, settings), settings.selection_specs())
    per_arm = {arm.label: arm_rows(arm, subsets) for arm in arms}  # a selected arm's: the pool it selects from
    shared = sorted(set.intersection(*(set(rows) for rows in per_arm.values())))
    if drawn is not None:
        return _resumed(settings, arms, per_arm, drawn)
    any_arm = per_arm[arms[0].label]
    threshold = settings.holdout_similarity
    drawn_now = _draw(settings, shared, any_arm)
    test, train_ids, near_dropped = drawn_now.test, drawn_now.train_ids, drawn_now.near_dropped
    # Never train on a held-out question: the same text under another id, a near-variant (at least the threshold
    # similar: for a hold-out drawn by groups, the split leaves out those in other groups; an external benchmark's are
    # dropped here), and against a benchmark a shared 8-gram too (the contamination check's rule); within one data set
    # 8-grams are only counted, since its questions share template wording.
    sample = [any_arm[i] for i in sorted(train_ids)]
    test_questions = [p.question for p in test]
    near = threshold if settings.eval_benchmark is not None else None
    overlaps = check(sample, {"held-out": test_questions}, near=near).overlaps
    dropped = {o.problem_id for o in overlaps if o.kind != "ngram" or settings.eval_benchmark is not None}
    train_ids -= dropped
    normalised_test = {normalise_question(q) for q in test_questions}
    train = {label: [rows[i] for i in sorted(train_ids)] for label, rows in per_arm.items()}
    assert not any(normalise_question(r.question) in normalised_test for rows in train.values() for r in rows)
    if not train_ids or not test:
        raise SweepError(
            f"{settings.corpus}: {len(train_ids)} training and {len(test)} held-out problems left ("
            f"{len(near_dropped | dropped)} dropped from training as copies or near-variants of held-out ones); "
            "raise --holdout-similarity, or evaluate on another data set with --eval"
        )
    kept = [any_arm[i].question for i in sorted(train_ids)]
    held_out = {
        "questions": len(test),
        "training_problems": len(train_ids),
        "dropped_from_training": len(dropped | near_dropped),
        "near_variants_dropped": len(near_dropped | {o.problem_id for o in overlaps if o.kind == "near"}),
        "ngram_overlaps_kept": sum(o.kind == "ngram" and o.problem_id in train_ids for o in overlaps),
        "similarity_threshold": threshold,
        "highest_similarity": highest_similarity(test_questions, kept),
        **drawn_now.groups,
    }
    return SweepPlan(settings, arms, train, test, held_out, drawn_now.question_groups)


def _resumed(
    settings: SweepSettings, arms: list[Arm], per_arm: dict[str, dict[str, CoTRecord]], drawn: HeldOut
) -> SweepPlan:
    """The plan of a resumed sweep: the held-out and training problems its finished cells had, however cotforge
    would draw them now (a sweep made before complete linkage and the exact threshold keeps its own)."""
    held, trained = drawn.problem_ids, drawn.train_problem_ids
    missing = [i for i in [*held, *trained] if any(i not in rows for rows in per_arm.values())]
    if missing:
        raise SweepError(
            f"{settings.corpus}: lacks {len(missing)} of the problems this sweep's finished cells were trained or "
            f"evaluated on (such as {missing[0]}); give another --out"
        )
    test = [per_arm[arms[0].label][i].problem() for i in held]
    groups = drawn.question_groups
    if groups is None:  # recorded before the groups were: the families of the held-out questions
        groups = numbered(near_variants([p.question for p in test], settings.holdout_similarity).family)
    train = {label: [rows[i] for i in trained] for label, rows in per_arm.items()}
    return SweepPlan(settings, arms, train, test, drawn.check, groups)


def describe_holdout(h: dict[str, int | float]) -> str:
    """What the held-out check found (plan.held_out), for the dry run and the report; a sweep's record from before
    complete linkage lacks the counts of split families, dropped near-variants and groups too big."""
    text = (
        # Cut, not rounded, to three places: a similarity just under the threshold never shows as the threshold.
        f"the closest training question to a held-out one is {math.floor(h['highest_similarity'] * 1000) / 1000:.3f} "
        f"similar (near-variants from {h['similarity_threshold']:g} kept apart"
    )
    if h.get("families_split"):
        text += (
            "; a family of linked near-variants too big for the hold-out held out a group at a time, every pair in a "
            f"group that similar (complete linkage; {h['families_split']} such families)"
        )
    if h.get("near_variants_dropped"):
        text += f"; {h['near_variants_dropped']} training questions dropped as near-variants of held-out ones"
    text += f"), and {h['ngram_overlaps_kept']} training questions share an 8-gram with a held-out one"
    if h.get("groups_too_big"):
        text += (
            f"; {h['groups_too_big']} groups of near-variants ({h['questions_too_big']} questions) are larger than the "
            "whole hold-out and were never held out (raise --holdout or --eval-limit, or --holdout-similarity to make "
            "groups smaller)"
        )
    return text


def describe_plan(plan: SweepPlan, prior_accuracy: float) -> str:
    """What a sweep would run and what it could detect, before anything is trained (`cotforge sweep --dry-run`)."""
    s, h = plan.settings, plan.held_out
    arms = len(plan.arms)
    pair_se = planned_pair_se(h["questions"], len(s.seeds), prior_accuracy, s.run_sd or 0.0)
    lines = [
        f"arms: {', '.join(a.label for a in plan.arms)} ({', '.join(a.subset for a in plan.arms)})",
        f"cells: {len(plan.cells)} ({len(s.students)} student(s) x {arms} arms x {len(s.seeds)} seed(s)), "
        f"{plan.steps()} steps each",
        f"problems: {h['training_problems']} in training, {h['questions']} held out",
    ]
    if "highest_similarity" in h:
        lines.append(f"hold-out: {describe_holdout(h)}")
    if s.adaptive:
        budget = f", at most {s.cell_budget} cells" if s.cell_budget else ""
        lines.append(
            f"adaptive: one round per seed; after each, arms the verdict calls worse get no more seeds{budget}"
        )
    # The verdict estimates the seed-level variance from the seeds unless --run-sd gives the run term: a t with their
    # degrees of freedom.
    run_df = None if s.run_sd is not None or len(s.seeds) < 2 else arms * (len(s.seeds) - 1)
    power = power_sentence(arms, pair_se, prior_accuracy, run_df, run_share=run_share(s.run_sd, len(s.seeds), pair_se))
    run = f"a run-to-run SD of {s.run_sd:.1%} (--run-sd)" if s.run_sd else "no run-to-run spread (give --run-sd)"
    lines.append(
        f"power: with {h['questions']} questions, {len(s.seeds)} seed(s), a prior accuracy of {prior_accuracy:.0%}, "
        f"{run} and a correlation of {PLANNING_QUESTION_CORRELATION:.1f} between two arms' answers to a question: "
        f"{power}. More questions (--eval-limit, --holdout) or seeds "
        "(--seeds) raise it"
    )
    return "\n".join(lines)
