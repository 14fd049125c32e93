"""The first granularity study (issue #13, benchmarks/results/granularity-study-smollm2-svamp.json) read again with
the sweep's current method, as far as its saved figures allow.

Its per-question predictions were not kept, only each arm's count of right answers out of 199 (one seed). So each
arm's answers are laid out at random over the questions, independently of the other arms: the pairing is lost, which
is conservative (paired answers to the same questions give narrower differences), and with one seed no run-to-run
variance enters: "worse" is about these trained models. Then the sweep's verdict (model confidence set) and its power
to name the best alone.

    python benchmarks/reread_granularity_study.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cotforge.sweeps import verdict
from cotforge.sweeps.power import power_sentence

RESULTS = Path(__file__).parent / "results" / "granularity-study-smollm2-svamp.json"


def main() -> None:
    report = json.loads(RESULTS.read_text())
    names = [a["arm"] for a in report["arms"]]
    questions = report["held_out"]["questions"]
    rng = np.random.default_rng(0)
    scores = {}
    for name in names:
        right = next(c["correct"] for c in report["cells"] if c["arm"] == name)
        scores[name] = (rng.permutation(questions) < right).astype(float)[None, :]
    found = verdict(scores)
    print("| arm | accuracy | 95% interval | MCS p | could be best |")
    print("|---|---:|---|---:|---|")
    for arm in found.arms:
        print(
            f"| {arm.name} | {arm.accuracy:.1%} | {arm.interval[0]:.1%} to {arm.interval[1]:.1%} | {arm.mcs_p:.3f} | "
            f"{'yes' if arm.name in found.could_be_best else 'no'} |"
        )
    print(f"could be best: {', '.join(found.could_be_best)}; worse: {', '.join(found.worse)}")
    typical = float(np.median([a.accuracy for a in found.arms]))
    print(f"{found.run_sentence}; {power_sentence(len(names), found.pair_se, typical)}")


if __name__ == "__main__":
    main()
