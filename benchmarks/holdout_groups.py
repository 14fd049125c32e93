"""The sweep's hold-out drawn by near-variant groups: time and what it holds out, this checkout against a baseline's.

    python benchmarks/holdout_groups.py --baseline /path/to/main [--large 7500]

Three corpora: the paper's SVAMP questions (about 700), the same with each story re-told ten more times with other
numbers (--large questions, near-variant families of 11 and more), and a chain of 301 questions each 0.96 similar to
the next and unrelated end to end. Each checkout runs `split_by_groups` (30% held out, threshold 0.8) in its own
process, one after the other on the same questions; wall seconds are the best of --rounds (one round for the large
corpus). The machine is shared: only runs made side by side compare.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def corpora(large: int) -> dict[str, list[str]]:
    sys.path.insert(0, str(ROOT))
    from cotforge.contamination import training_questions
    from cotforge.paper import import_paper

    with tempfile.TemporaryDirectory() as tmp:
        import_paper(ROOT / "tests" / "fixtures" / "eit-nlp-svamp", Path(tmp) / "paper")
        svamp = sorted({q.problem_id: q.question for q in training_questions(Path(tmp) / "paper")}.items())
    rng = random.Random(0)
    retold = [
        re.sub(r"\d+", lambda _: str(rng.randint(2, 99)), question)
        for _ in range(large // len(svamp) + 1)
        for _, question in svamp
    ]
    letters = [rng.choice(string.ascii_lowercase) for _ in range(50)]
    chain = []
    for _ in range(301):
        chain.append("".join(letters))
        for _ in range(2):  # two of 50 characters changed: 0.96 similar to the one before
            letters[rng.randrange(50)] = rng.choice(string.ascii_lowercase)
    return {"svamp": [q for _, q in svamp], f"svamp x{large // len(svamp) + 1}": retold[:large], "chain": chain}


def measure(questions: list[str], rounds: int) -> dict[str, float | int]:
    """Run by each checkout, in its own process."""
    from cotforge.sweeps.holdout import split_by_groups

    ids = [f"q{i:05d}" for i in range(len(questions))]
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        split = split_by_groups(ids, questions, 0.3, None, 0.8)
        seconds.append(time.perf_counter() - started)
    return {
        "seconds": min(seconds),
        "held_out": len(split.held_out),
        "training": len(split.training),
        "groups": split.groups,
        "largest": split.largest_group,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", help="another checkout of cotforge (its repository root)")
    parser.add_argument("--large", type=int, default=7500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # a checkout's own process: questions file
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure.read_text()), args.rounds)))
        return
    if not args.baseline:
        parser.error("--baseline is needed")
    print(f"{'corpus':<14} {'questions':>9} {'checkout':<9} {'seconds':>8} {'held out':>9} {'training':>9} "
          f"{'families':>9} {'largest':>8}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, questions in corpora(args.large).items():
            path = Path(tmp) / "questions.json"
            path.write_text(json.dumps(questions))
            rounds = 1 if len(questions) > 1000 else args.rounds
            results = {}
            for label, checkout in (("baseline", Path(args.baseline).resolve()), ("this", ROOT)):
                command = [sys.executable, __file__, "--measure", str(path), "--rounds", str(rounds)]
                output = subprocess.run(
                    command, env=os.environ | {"PYTHONPATH": str(checkout)}, cwd=tmp, check=True, capture_output=True
                ).stdout
                results[label] = json.loads(output.decode().splitlines()[-1])
                r = results[label]
                print(f"{name:<14} {len(questions):>9} {label:<9} {r['seconds']:>8.2f} {r['held_out']:>9} "
                      f"{r['training']:>9} {r['groups']:>9} {r['largest']:>8}")  # fmt: skip
            print(
                f"{name:<14} this / baseline: {results['this']['seconds'] / results['baseline']['seconds']:.2f}x time"
            )


if __name__ == "__main__":
    main()
