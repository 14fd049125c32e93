"""One build directory resumed as a no-op by a baseline checkout and by this one in turn, at the same moment.

    python benchmarks/noop_compare.py --baseline /path/to/main [--shape 1x1] [--answers 100000] [--rounds 2]
    python benchmarks/noop_compare.py --baseline /path/to/main --build DIR/out --recipe DIR/recipe.yaml

The build is made once by this checkout against the scripted server (or an existing one is given, as
`build_scale.py --keep` leaves it); then each round runs `cotforge build` on the finished directory with the
baseline's code and with this checkout's (the store's keys are the same on both; each on its own copy of the
build directory), wall seconds, CPU seconds and peak resident memory from wait4. A shared machine's load changes
from minute to minute: only runs made side by side compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from build_scale import ROOT, run, run_timed, start_server, write_build


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", required=True, help="another checkout of cotforge (its repository root)")
    parser.add_argument("--shape", default="1x1", help="samples x levels per problem")
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--build", type=Path, help="a finished build directory to resume instead of making one")
    parser.add_argument("--recipe", type=Path, help="the recipe file of --build")
    args = parser.parse_args()
    if args.build:
        if not args.recipe:
            parser.error("--build needs --recipe")
        compare(args.recipe.resolve(), args.build.resolve(), args.baseline, args.rounds)
        return
    samples, levels = (int(n) for n in args.shape.split("x"))
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
            os.chdir(tmp)  # not a checkout: `python -m cotforge` imports the package of its working directory first
            recipe = write_build(Path(tmp), args.answers // (samples * levels), url, samples, levels)
            os.environ["PYTHONPATH"] = str(ROOT)
            seconds, peak = run(recipe, Path(tmp) / "out")
            print(f"{args.shape} {args.answers:,} answers: build {seconds:.1f} s at {peak:.2f} GB", flush=True)
            compare(recipe, Path(tmp) / "out", args.baseline, args.rounds)
    finally:
        server.terminate()


def compare(recipe: Path, out: Path, baseline: str, rounds: int) -> None:
    """Rounds of no-op resumes, the baseline's then this checkout's, and this checkout's speed-up in each. Each
    checkout resumes its own copy of the build (their `cache/` entries may differ in layout, and each removes the
    entries it does not know), made current by one run first, not timed."""
    os.chdir(out.parent)  # not a checkout: `python -m cotforge` imports the package of its working directory first
    builds = {baseline: out.with_name(f"{out.name}-baseline"), str(ROOT): out}
    if not builds[baseline].exists():
        shutil.copytree(out, builds[baseline])
    for checkout, build in builds.items():
        os.environ["PYTHONPATH"] = checkout
        run(recipe, build)
    for _ in range(rounds):
        seconds = {}
        for checkout, build in builds.items():
            os.environ["PYTHONPATH"] = checkout
            seconds[checkout], cpu, peak = run_timed(recipe, build)
            load = os.getloadavg()[0]  # the 1-minute load average: the wall time depends on it, the CPU time less
            figures = f"{seconds[checkout]:.1f} s, {cpu:.1f} s of CPU, {peak:.2f} GB, load {load:.1f}"
            print(f"no-op resume, {checkout}: {figures}", flush=True)
        print(f"  this checkout {seconds[baseline] / seconds[str(ROOT)]:.1f}x the baseline's speed", flush=True)


if __name__ == "__main__":
    main()
