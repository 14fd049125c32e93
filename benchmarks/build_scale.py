"""Memory and time of a build as it grows: 10k, 100k and 1M answers against the scripted server.

    python benchmarks/build_scale.py [--answers 10000,100000,1000000] [--samples 5] [--levels 2]

Each size runs `cotforge build` in its own process (peak resident memory from wait4), then three more runs of the
same command on the finished directory:
  - a no-op resume (nothing to ask, outputs current): it should read keys and counts and write nothing;
  - an export with the subsets removed (nothing to ask; every Parquet file written again from the store);
Answers per problem = samples x levels, so 1M answers are 100k problems at the defaults. Short scripted answers:
real rationales are longer, which grows the store, not the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
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
    return seconds, usage.ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def store_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.glob("store.sqlite*"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", default="10000,100000,1000000")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--levels", type=int, default=2)
    args = parser.parse_args()
    server, url = start_server()
    per_problem = args.samples * args.levels
    print(f"scripted server {url}; {args.samples} samples x {args.levels} levels per problem")
    print(
        f"{'answers':>9} {'build s':>8} {'ans/s':>7} {'peak GB':>8} {'store B/ans':>11} "
        f"{'no-op s':>8} {'no-op GB':>8} {'export s':>8} {'export GB':>9}"
    )
    try:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
            for answers in [int(a) for a in args.answers.split(",")]:
                work = Path(tmp) / str(answers)
                work.mkdir()
                problems = work / "problems.jsonl"
                with problems.open("w") as handle:
                    for i in range(answers // per_problem):
                        handle.write(json.dumps({"question": f"n{answers} q{i} answer=5", "answer": "5"}) + "\n")
                recipe = work / "recipe.yaml"
                recipe.write_text(
                    yaml.safe_dump(
                        {
                            "name": "scale",
                            "sources": [{"path": str(problems), "answer_type": "number"}],
                            "teachers": [{"model": "scripted", "base_url": url, "max_concurrency": 64}],
                            "granularities": list(range(1, args.levels + 1)),
                            "sampling": {"max_tokens": 64, "n": args.samples},
                        }
                    )
                )
                out = work / "out"
                built_s, built_gb = run(recipe, out)
                report = json.loads((out / "build_report.json").read_text())
                assert report["accepted"] == answers, report
                size = store_bytes(out)
                noop_s, noop_gb = run(recipe, out)
                shutil.rmtree(out / "subsets")
                export_s, export_gb = run(recipe, out)
                print(
                    f"{answers:>9,} {built_s:>8.1f} {answers / built_s:>7.0f} {built_gb:>8.2f} {size / answers:>11.0f} "
                    f"{noop_s:>8.1f} {noop_gb:>8.2f} {export_s:>8.1f} {export_gb:>9.2f}",
                    flush=True,
                )
                shutil.rmtree(work)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
