"""Planning memory per problem: load a local .jsonl source and plan a build's keys (what a no-op resume does before
it reads the store), each size in its own process, peak resident memory from wait4.

    python benchmarks/plan_memory.py [--problems 100000,1000000] [--samples 1] [--levels 1]

Prints peak and time per size and the slope between the first and the last size, in bytes per problem: what each
more problem costs while planning. The same script runs on any commit whose Build takes (recipe, sources, store).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from build_scale import write_build


def plan(recipe_path: str, out: str) -> None:
    """In the child: what `cotforge build` does before its first request, less the teacher."""
    from cotforge.builders.build import Build
    from cotforge.builders.store import Store
    from cotforge.recipes import load_recipe
    from cotforge.recipes.sources import load_sources

    recipe = load_recipe(recipe_path)
    with Store(Path(out) / "store.sqlite") as store:
        build = Build(recipe, load_sources(recipe), store)
        print(len(build.plan_keys))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", default="100000,1000000")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--levels", type=int, default=1)
    args = parser.parse_args()
    peaks = []
    print(f"{'problems':>9} {'keys':>9} {'plan s':>7} {'peak GB':>8}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        for problems in [int(n) for n in args.problems.split(",")]:
            work = Path(tmp) / str(problems)
            work.mkdir()
            recipe = write_build(work, problems, "http://127.0.0.1:9/v1", args.samples, args.levels)
            started = time.monotonic()
            child = subprocess.Popen(
                [sys.executable, __file__, "--child", str(recipe), str(work)], stdout=subprocess.PIPE, text=True
            )
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.monotonic() - started
            assert child.stdout is not None
            keys = int(child.stdout.read().strip() or 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit("planning failed")
            peak = usage.ru_maxrss * 1024
            peaks.append((problems, peak))
            print(f"{problems:>9,} {keys:>9,} {seconds:>7.1f} {peak / 1e9:>8.3f}", flush=True)
    (first, low), (last, high) = peaks[0], peaks[-1]
    if last > first:
        print(f"slope: {(high - low) / (last - first):,.0f} bytes per problem ({first:,} to {last:,} problems)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        plan(sys.argv[2], sys.argv[3])
    else:
        main()
