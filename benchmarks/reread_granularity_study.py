"""The first granularity study (issue #13, benchmarks/results/granularity-study-smollm2-svamp.json) read again with
the sweep's current method, as far as its saved figures allow.

Its per-question predictions were not kept, only each arm's count of right answers out of 199 and the McNemar
p-values of each arm against the observed best. So: (1) Holm's adjustment of those paired p-values; (2) MCB and the
probability of being best from a bootstrap that resamples each arm's answers independently (binomial), which ignores
the pairing and is therefore conservative: paired answers to the same questions would give narrower differences;
(3) the difference the study could detect with 80% power, from the same unpaired standard errors.

    python benchmarks/reread_granularity_study.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cotforge.sweeps.statistics import (
    compare_with_best,
    holm,
    minimum_detectable_effect,
    typical_standard_error,
)

RESULTS = Path(__file__).parent / "results" / "granularity-study-smollm2-svamp.json"


def main() -> None:
    report = json.loads(RESULTS.read_text())
    arms = report["arms"]
    names = [a["arm"] for a in arms]
    correct = np.array([next(c["correct"] for c in report["cells"] if c["arm"] == a) for a in names])
    questions = report["held_out"]["questions"]
    observed = correct / questions
    rng = np.random.default_rng(0)
    replicates = rng.binomial(questions, observed, size=(2000, len(names))) / questions
    found, critical = compare_with_best(list(observed), replicates)
    others = [a for a in arms if a["vs_best"] is not None]
    adjusted = dict(zip([a["arm"] for a in others], holm([a["vs_best"]["p_mcnemar"] for a in others]), strict=True))
    print("| arm | accuracy | McNemar p vs best (then) | Holm-adjusted | P(best) | MCB interval | could be best |")
    print("|---|---:|---:|---:|---:|---|---|")
    for arm, accuracy, result in zip(arms, observed, found, strict=True):
        then = f"{arm['vs_best']['p_mcnemar']:.3f}" if arm["vs_best"] else "best"
        holm_p = f"{adjusted[arm['arm']]:.3f}" if arm["arm"] in adjusted else ""
        print(
            f"| {arm['arm']} | {accuracy:.1%} | {then} | {holm_p} | {result.probability_best:.0%} | "
            f"[{result.mcb_low:+.1%}, {result.mcb_high:+.1%}] | {'yes' if result.could_be_best else 'no'} |"
        )
    mde = minimum_detectable_effect(typical_standard_error(replicates), critical)
    print(f"minimum detectable difference at 80% power (unpaired, MCB critical value {critical:.2f}): {mde:.1%}")


if __name__ == "__main__":
    main()
