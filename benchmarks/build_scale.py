"""Memory and time of a build as it grows: 10k, 100k and 1M answers against the scripted server, in two shapes.

    python benchmarks/build_scale.py [--answers 10000,100000,1000000] [--shapes 5x2,1x1]

Each size runs `cotforge build` in its own process (peak resident memory from wait4), then three more runs of the
same command on the finished directory:
  - a no-op resume (nothing to ask, outputs current): it should read keys and counts and write nothing;
  - an export with the subsets removed (nothing to ask; every Parquet file written again from the store), unless
    --no-reexport;
A shape is samples x levels per problem: 5x2 (1M answers are 100k problems, ten answers each) and 1x1 (many
problems, one answer each: 1M answers are 1M problems, as NuminaMath-sized sources are). Short scripted answers: real
rationales are longer, which grows the store, not the peak.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def start_server() -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "serve_scripted.py"), "0"], stdout=subprocess.PIPE, text=True
    )
    return server, server.stdout.readline().strip()


def run(recipe: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak resident GB of one `cotforge build` process."""
    seconds, _, peak = run_timed(recipe, out)
    return seconds, peak


def run_timed(recipe: Path, out: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user and system: what a busy machine changes least) and peak resident GB of one
    `cotforge build` process."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "cotforge", "build", "--recipe", str(recipe), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"build failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / 1e9  # ru_maxrss: KiB on Linux


def write_build(
    work: Path,
    problems: int,
    url: str,
    samples: int,
    levels: int,
    row: Callable[[int], dict[str, str]] | None = None,
    name: str = "scale",
) -> Path:
    """A .jsonl source of `problems` rows in `work` (`row(i)` makes row i; by default a short question answered 5)
    and the recipe that builds it; returns the recipe."""
    make_row = row or (lambda i: {"question": f"n{problems} q{i} answer=5", "answer": "5"})
    source = work / "problems.jsonl"
    with source.open("w") as handle:
        for i in range(problems):
            handle.write(json.dumps(make_row(i)) + "\n")
    recipe = work / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "sources": [{"path": str(source), "answer_type": "number"}],
                "teachers": [{"model": "scripted", "base_url": url, "max_concurrency": 64}],
                "granularities": list(range(1, levels + 1)),
                "sampling": {"max_tokens": 64, "n": samples},
            }
        )
    )
    return recipe


def store_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.glob("store.sqlite*"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", default="10000,100000,1000000")
    parser.add_argument("--shapes", default="5x2,1x1", help="samples x levels per problem, comma-separated")
    parser.add_argument("--no-reexport", action="store_true", help="skip the third run (export from the store)")
    parser.add_argument("--keep", type=Path, help="make the builds in this folder and keep them (to resume later)")
    args = parser.parse_args()
    server, url = start_server()
    print(f"scripted server {url}")
    print(
        f"{'shape':>5} {'answers':>9} {'build s':>8} {'ans/s':>7} {'peak GB':>8} {'store B/ans':>11} "
        f"{'no-op s':>8} {'no-op GB':>8} {'export s':>8} {'export GB':>9}"
    )
    shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shapes.split(",")]
    try:
        with (
            contextlib.nullcontext(str(args.keep))
            if args.keep
            else tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp
        ):
            for (samples, levels), answers in itertools.product(shapes, [int(a) for a in args.answers.split(",")]):
                per_problem = samples * levels
                work = Path(tmp) / f"{samples}x{levels}-{answers}"
                work.mkdir(parents=True)
                recipe = write_build(work, answers // per_problem, url, samples, levels)
                out = work / "out"
                built_s, built_gb = run(recipe, out)
                report = json.loads((out / "build_report.json").read_text())
                assert report["accepted"] == answers, report
                size = store_bytes(out)
                noop_s, noop_gb = run(recipe, out)
                export_s = export_gb = float("nan")
                if not args.no_reexport:
                    shutil.rmtree(out / "subsets")
                    export_s, export_gb = run(recipe, out)
                print(
                    f"{f'{samples}x{levels}':>5} {answers:>9,} {built_s:>8.1f} {answers / built_s:>7.0f} "
                    f"{built_gb:>8.2f} {size / answers:>11.0f} {noop_s:>8.1f} {noop_gb:>8.2f} "
                    f"{export_s:>8.1f} {export_gb:>9.2f}",
                    flush=True,
                )
                if not args.keep:
                    shutil.rmtree(work)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
