"""Judging as the answers arrive against judging after the build, on the scripted server (a fixed latency per
request, as a remote API has): the same problems, teacher and judge, in the same run.

    nice python benchmarks/judge_live.py [--problems 200] [--latency 0.05] [--concurrency 8]

Baseline: a build without a judge, then `cotforge.judge` over it (what a build did before issue #38's live judge).
Live: the same build with the recipe's judge section, each accepted answer judged as it is stored. Printed: the wall
time of each, to the last verdict, and the ratio of each arm's best of `rounds` (alternating, so neither arm alone
pays for the first imports); the verdicts paid for are the same (each record once).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cotforge  # noqa: E402
from tests.helpers import scripted_recipe, write_problems  # noqa: E402
from tests.scripted_server import ScriptedServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="Each arm this many times, alternating; best kept")
    args = parser.parse_args()
    server = ScriptedServer(latency_s=args.latency).start()
    teacher = {"max_concurrency": args.concurrency, "timeout_s": 30.0}
    judge_teacher = {"model": "judge", "base_url": server.url, "max_concurrency": args.concurrency}
    judge = {"teacher": judge_teacher, "rubrics": ["faithful"]}
    walls: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for round_, arm in ((r, a) for r in range(args.rounds) for a in ("after", "live")):
                name = f"{arm}{round_}"
                questions = [f"{name}-{i} answer=5 verdict={1 + i % 5}" for i in range(args.problems)]
                problems = write_problems(Path(folder) / f"{name}.jsonl", questions)
                out = Path(folder) / name
                started = time.monotonic()
                if arm == "after":
                    cotforge.build(scripted_recipe(problems, server.url, teacher=teacher), out)
                    judged = cotforge.judge(out, judge)
                else:
                    recipe = scripted_recipe(problems, server.url, teacher=teacher, judge=judge)
                    found = cotforge.build(recipe, out).judged
                    assert found is not None
                    judged = found
                wall = time.monotonic() - started
                walls[arm] = min(wall, walls.get(arm, wall))
                print(f"{arm:>5} (round {round_}): {wall:.2f} s to the last verdict, {judged.asked} verdicts asked")
    finally:
        server.stop()
    print(f"live / after: {walls['live'] / walls['after']:.2f}x the wall time")


if __name__ == "__main__":
    main()
