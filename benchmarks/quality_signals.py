"""Time and peak memory of the quality signals of one subset (cotforge.quality.signals), on synthetic answers.

    python benchmarks/quality_signals.py [--answers 100000,400000] [--samples 5]

Each size runs in its own process (peak resident memory from wait4), twice: every rationale distinct (MinHash for
each one, no near-duplicate), and every rationale the same (the scripted server's answers in build_scale.py: one
MinHash per batch, and every rationale in one LSH bucket per band, the worst case of the near-duplicate pass).
Printed: seconds and microseconds per answer, peak GB, and each size's figures as ratios to the smallest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def one(answers: int, samples: int, distinct: bool) -> None:
    from cotforge.quality.signals import AnswerRow, subset_signals

    def rows():
        for q in range(answers // samples):
            for s in range(samples):
                text = (
                    f"We work it out step by step for question {q}, sample {s}: first {q} plus {s} is {q + s}, then "
                    f"we check it twice.\nThe answer is {q + s}"
                    if distinct
                    else "We work it out step by step.\nThe answer is 5"
                )
                yield AnswerRow(f"q{q:08d}", f"k{q:08d}-{s}", True, "5", text, len(text.split()), 2, False)

    found = subset_signals(rows())
    print(found.near_duplicates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", default="100000,400000")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(int(args.one[0]), args.samples, args.one[1] == "distinct")
        return
    header = f"{'answers':>9} {'texts':>9} {'s':>7} {'us/ans':>7} {'peak GB':>8} {'near-dups':>9}"
    print(f"{header} {'x time/ans':>10} {'x peak':>7}")
    baseline: dict[str, tuple[float, float]] = {}
    for answers in [int(a) for a in args.answers.split(",")]:
        for texts in ("distinct", "same"):
            started = time.monotonic()
            process = subprocess.Popen(
                [sys.executable, __file__, "--samples", str(args.samples), "--one", str(answers), texts],
                stdout=subprocess.PIPE,
                text=True,
            )
            _, status, usage = os.wait4(process.pid, 0)  # one line of output: the pipe never fills
            seconds = time.monotonic() - started
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{answers} {texts}: failed")
            assert process.stdout is not None
            output = process.stdout.read()
            peak = usage.ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux
            per_answer = seconds / answers * 1e6
            base = baseline.setdefault(texts, (per_answer, peak))
            print(
                f"{answers:>9,} {texts:>9} {seconds:>7.1f} {per_answer:>7.1f} {peak:>8.3f} {output.strip():>9} "
                f"{per_answer / base[0]:>10.2f} {peak / base[1]:>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
