"""Does the sweep name the best arm when the data can, and only then? Simulated studies (tests/sweep_simulation.py):
8 arms, 199 questions, accuracy 15%, each question's difficulty shared by every arm, read by cotforge.sweeps.verdict
(bootstrap over question groups, pooled run-to-run term, model confidence set).

    nice python benchmarks/sweep_selection.py [--studies 500] [--resamples 400] [--only null,power,groups,adaptive]

- null: every arm equal; the share of studies calling some arm worse (a false finding), at 1, 2 and 3 seeds, with and
  without a run-to-run spread (SD 2 points), question ICC 0.1 to 0.3; at 1 seed also with the spread given (--run-sd).
- power: one arm 10 or 15 points better than seven equal ones; the share naming it alone, beside the power the dry
  run and report state (cotforge.sweeps.power, from each study's paired standard error).
- groups: near-variant clusters of 5 questions whose answers within a run are correlated; null rate with the groups
  passed to the verdict and without.
- adaptive: 3 seeds; the adaptive sweep (cotforge.sweeps.adaptive) against the full grid on the same simulated
  answers: how often their verdicts (the set that could be best) agree, the share of the grid's cells it ran, and how
  often each calls some arm worse (a false finding where all arms are equal). The rounds and the grid draw the same
  resamples from the same seed, so the two differ only by the cells run.

Every row uses its own generator seed (printed), so a row can be rerun alone. A low resample count keeps the run to
minutes: it adds noise to each verdict, not bias.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cotforge.sweeps import verdict
from cotforge.sweeps.adaptive import next_round_arms
from cotforge.sweeps.power import gap_for_power, power_to_name_best
from tests.sweep_simulation import simulated_arms

ARMS, QUESTIONS, ACCURACY = 8, 199, 0.15


def _null(args: argparse.Namespace) -> None:
    print("\n| seeds | question ICC | run-to-run SD | run SD given | calls some arm worse | row seed |")
    print("|---:|---:|---:|---|---:|---:|")
    rows = [(s, 0.2, sd, None) for s in (1, 2, 3) for sd in (0.0, 0.02)]
    rows += [
        (1, 0.2, 0.02, 0.02),
        (2, 0.1, 0.02, None),
        (2, 0.3, 0.02, None),
        (3, 0.1, 0.0, None),
        (3, 0.3, 0.02, None),
    ]
    for row, (seeds, icc, spread, given) in enumerate(rows):
        rng = np.random.default_rng(100 + row)
        calls = sum(
            bool(
                verdict(
                    simulated_arms(rng, ARMS, QUESTIONS, seeds, ACCURACY, icc, run_sd=spread),
                    run_sd=given,
                    resamples=args.resamples,
                    seed=study,
                ).worse
            )
            for study in range(args.studies)
        )
        shown = f"{given:.0%}" if given is not None else "no"
        print(f"| {seeds} | {icc} | {spread:.0%} | {shown} | {calls / args.studies:.1%} | {100 + row} |", flush=True)


def _power(args: argparse.Namespace) -> None:
    print("\n| gap | seeds | run-to-run SD | run SD given | best named alone | stated power (mean) | 80% from |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    rows = [(0.10, 2, 0.0, None), (0.15, 2, 0.0, None), (0.10, 2, 0.02, None), (0.15, 2, 0.02, None)]
    rows += [(0.10, 2, 0.0, 0.0), (0.10, 3, 0.0, None), (0.10, 3, 0.02, None)]
    for row, (gap, seeds, spread, given) in enumerate(rows):
        rng = np.random.default_rng(200 + row)
        named, stated, errors, dfs, shares = 0, [], [], [], []
        for study in range(args.studies):
            arms = simulated_arms(rng, ARMS, QUESTIONS, seeds, ACCURACY, 0.2, gaps=(gap,), run_sd=spread)
            found = verdict(arms, run_sd=given, resamples=args.resamples, seed=study)
            named += found.could_be_best == ("arm0",)
            stated.append(
                power_to_name_best(
                    ARMS, gap, found.pair_se, ACCURACY, df=found.t_degrees_of_freedom, run_share=found.run_share
                )
            )
            shares.append(found.run_share)
            errors.append(found.pair_se)
            dfs.append(found.t_degrees_of_freedom or 0)
        df = float(np.median(dfs)) or None  # the typical study's: the run term estimated, or not
        eighty = gap_for_power(ARMS, float(np.median(errors)), ACCURACY, df=df, run_share=float(np.median(shares)))
        shown = f"{given:.0%}" if given is not None else "no"
        print(
            f"| {gap:.0%} | {seeds} | {spread:.0%} | {shown} | {named / args.studies:.1%} | {np.mean(stated):.1%} | "
            f"{eighty:.1%} |",
            flush=True,
        )
    print(f"(row seeds 200 to {199 + len(rows)}, in order)")


def _groups(args: argparse.Namespace) -> None:
    print("\n| seeds | clusters | groups passed | calls some arm worse | row seed |")
    print("|---:|---|---|---:|---:|")
    labels = list(np.arange(QUESTIONS) // 5)
    for passed in (True, False):
        rng = np.random.default_rng(300)  # the same studies, read with and without the groups
        calls = 0
        for study in range(args.studies):
            arms = simulated_arms(rng, ARMS, QUESTIONS, 2, ACCURACY, 0.2, group_size=5, group_share=0.8)
            found = verdict(arms, labels if passed else None, resamples=args.resamples, seed=study)
            calls += bool(found.worse)
        print(
            f"| 2 | 5 questions, 80% of answers shared in a run | {'yes' if passed else 'no'} | "
            f"{calls / args.studies:.1%} | 300 |",
            flush=True,
        )


def _adaptive_run(arms: dict[str, np.ndarray], seeds: int, resamples: int, study: int) -> tuple[tuple[str, ...], int]:
    """The adaptive sweep on simulated answers: its final set, and the cells it ran."""
    ran = {name: 1 for name in arms}
    active = list(arms)
    for _ in range(1, seeds):
        active, _ = next_round_arms({name: arms[name][: ran[name]] for name in arms}, resamples=resamples, seed=study)
        if not active:
            break
        for name in active:
            ran[name] += 1
    final = verdict({name: arms[name][: ran[name]] for name in arms}, resamples=resamples, seed=study)
    return final.could_be_best, sum(ran.values())


def _adaptive(args: argparse.Namespace) -> None:
    print(
        "\n| scenario | seeds | full grid names one best | same set as the full grid | cells run (share) | "
        "calls some arm worse: grid / adaptive | row seed |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row, (name, gap, spread) in enumerate(
        [
            ("all equal", 0.0, 0.0),
            ("one arm +10 points", 0.10, 0.0),
            ("one arm +15 points", 0.15, 0.0),
            ("one arm +10 points, run SD 2 points", 0.10, 0.02),
        ]
    ):
        rng = np.random.default_rng(400 + row)
        agree = single = cells = grid_worse = adaptive_worse = 0
        for study in range(args.studies):
            arms = simulated_arms(rng, ARMS, QUESTIONS, 3, ACCURACY, 0.2, gaps=(gap,), run_sd=spread)
            full = verdict(arms, resamples=args.resamples, seed=study).could_be_best
            adaptive, ran = _adaptive_run(arms, 3, args.resamples, study)
            agree += set(adaptive) == set(full)
            single += len(full) == 1
            cells += ran
            grid_worse += len(full) < ARMS
            adaptive_worse += len(adaptive) < ARMS
        share = cells / (args.studies * ARMS * 3)
        print(
            f"| {name} | 3 | {single / args.studies:.1%} | {agree / args.studies:.1%} | {share:.0%} | "
            f"{grid_worse / args.studies:.1%} / {adaptive_worse / args.studies:.1%} | {400 + row} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=500)
    parser.add_argument("--resamples", type=int, default=400)
    parser.add_argument("--only", default="null,power,groups,adaptive")
    args = parser.parse_args()
    started = time.process_time()
    print(
        f"{args.studies} studies per row, {ARMS} arms, {QUESTIONS} questions, accuracy {ACCURACY:.0%}, "
        f"{args.resamples} resamples per verdict"
    )
    sections = {"null": _null, "power": _power, "groups": _groups, "adaptive": _adaptive}
    for section in args.only.split(","):
        sections[section](args)
    print(f"\nCPU time: {time.process_time() - started:.0f} s")


if __name__ == "__main__":
    main()
