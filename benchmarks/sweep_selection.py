"""How often does a sweep find a best arm where there is none? Simulated studies in which every arm is equally good
(tests/sweep_simulation.py), read by the old rule and by the current one, in the same run.

Old rule (cotforge before issue #29): the arm with the highest observed accuracy is "best"; each other arm is "worse"
when a paired bootstrap over questions and McNemar's exact test (on per-question correctness averaged over seeds and
rounded with round()) both give p < 0.05, with no correction for picking the best or for the number of arms.
Current rule (cotforge.sweeps.statistics): Hsu's MCB from a two-level bootstrap; an arm is "worse" when it cannot
be the best at the 5% level.

    python benchmarks/sweep_selection.py [--studies 200] [--arms 8] [--questions 199] [--seeds 1,2]

Prints, per design, the share of studies where each rule names a single arm as the only best, and where it calls
at least one arm worse than the best (a false finding: every arm is equal), and their ratio old / current.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cotforge.sweeps.statistics import compare_with_best, resampled_accuracies
from tests.sweep_simulation import equal_arms


def _mcnemar(only_a: int, only_b: int) -> float:
    n = only_a + only_b
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n)


def old_rule(arms: dict[str, np.ndarray], rng: np.random.Generator, resamples: int) -> list[bool]:
    """Per arm: is it called worse than the observed best?"""
    per_question = {name: m.mean(axis=0) for name, m in arms.items()}
    best = max(per_question, key=lambda a: per_question[a].mean())
    n = len(per_question[best])
    draws = rng.integers(0, n, size=(resamples, n))
    worse = []
    for name, scores in per_question.items():
        if name == best:
            worse.append(False)
            continue
        deltas = scores - per_question[best]
        observed = deltas.mean()
        resampled = deltas[draws].mean(axis=1)
        if observed < 0:
            p_boot = min(1.0, max(1, 2 * int((resampled >= 0).sum())) / resamples)
        elif observed > 0:
            p_boot = min(1.0, max(1, 2 * int((resampled <= 0).sum())) / resamples)
        else:
            p_boot = 1.0
        a, b = np.round(per_question[best]), np.round(scores)  # numpy rounds half to even, as Python's round()
        p_mcnemar = _mcnemar(int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum()))
        worse.append(max(p_boot, p_mcnemar) < 0.05)
    return worse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--arms", type=int, default=8)
    parser.add_argument("--questions", type=int, default=199)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--accuracy", type=float, default=0.15)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    print(f"{args.studies} studies of {args.arms} equal arms, {args.questions} questions, accuracy {args.accuracy:.0%}")
    print("| seeds | rule | names one best arm | calls some arm worse |")
    print("|---:|---|---:|---:|")
    for seeds in (int(s) for s in args.seeds.split(",")):
        rng = np.random.default_rng(seeds)
        counts = {"old": [0, 0], "current": [0, 0]}
        for study in range(args.studies):
            arms = equal_arms(rng, args.arms, args.questions, seeds, args.accuracy)
            worse = old_rule(arms, rng, args.resamples)
            counts["old"][0] += sum(worse) == len(worse) - 1
            counts["old"][1] += any(worse)
            replicates = resampled_accuracies(arms, args.resamples, seed=study)
            found, _ = compare_with_best([float(m.mean()) for m in arms.values()], replicates)
            possible = [c.could_be_best for c in found]
            counts["current"][0] += sum(possible) == 1
            counts["current"][1] += not all(possible)
        for rule, (single, any_worse) in counts.items():
            print(f"| {seeds} | {rule} | {single / args.studies:.1%} | {any_worse / args.studies:.1%} |")
        old, new = counts["old"][1], counts["current"][1]
        print(f"seeds {seeds}: false 'worse' findings, old / current = {old / max(new, 1):.1f}x")


if __name__ == "__main__":
    main()
