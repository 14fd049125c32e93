"""The viewer at scale: `cotforge view` on a 1,000,000-answer build, timed over HTTP.

    python benchmarks/view_scale.py [--answers 1000000] [--build DIR] [--rounds 3]

Makes the build with build_scale.py's machinery (the scripted server, `cotforge build` in its own process) in
--build DIR, or reuses the build already there; one problem in 100 is cut by the budget (a `truncated` rejection)
and one in 4 is answered wrongly, so the rejection and correctness filters have rows to find. Then starts
`cotforge view DIR` as a subprocess, requests the overview and browse pages (first, middle and last page of the
records, filtered pages, the rejections, a question side by side) `--rounds` times each, and reports the slowest
time of each page against its goal (overview < 2 s, a browse page < 0.5 s) and the server's peak resident memory
(goal < 300 MB), read from /proc/<pid>/status (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_scale import run, start_server, write_build

OVERVIEW_GOAL_S, BROWSE_GOAL_S, MEMORY_GOAL_MB = 2.0, 0.5, 300
SAMPLES, LEVELS = 5, 2


def _problem(i: int) -> dict[str, str]:
    """One problem in 100 is cut by the budget, one in 4 answered wrongly: the filters have rows to find."""
    marker = " fault=length" if i % 100 == 99 else f" answer={4 if i % 4 == 3 else 5}"
    return {"id": f"q{i}", "question": f"view q{i} how many apples?{marker}", "answer": "5"}


def make_build(out: Path, answers: int) -> None:
    """A build of `answers` answers in `out` (5 samples x 2 levels per problem) from the scripted server."""
    server, url = start_server()
    try:
        out.mkdir(parents=True, exist_ok=True)
        work = out.parent / f"{out.name}-source"
        work.mkdir(exist_ok=True)
        recipe = write_build(work, answers // (SAMPLES * LEVELS), url, SAMPLES, LEVELS, _problem, "view-scale")
        seconds, peak_gb = run(recipe, out)
        print(f"built {answers:,} answers in {seconds:.0f} s (peak {peak_gb:.2f} GB)", flush=True)
    finally:
        server.terminate()


def peak_rss_mb(pid: int) -> float:
    found = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else float("nan")


def fetch(url: str) -> tuple[float, int]:
    """Seconds to the last byte of one GET, and the body's size."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


def pages(base: str, records: int, page_size: int) -> list[tuple[str, str, float]]:
    """(name, URL, goal in seconds) of every page timed."""
    last = max(0, (records - 1) // page_size)
    return [
        ("overview", f"{base}/", OVERVIEW_GOAL_S),
        ("browse: first page", f"{base}/browse", BROWSE_GOAL_S),
        ("browse: middle page", f"{base}/browse?page={last // 2}", BROWSE_GOAL_S),
        ("browse: last page", f"{base}/browse?page={last}", BROWSE_GOAL_S),
        ("browse: level 2, wrong", f"{base}/browse?level=2&correct=no", BROWSE_GOAL_S),
        ("browse: level 2, wrong, page 50", f"{base}/browse?level=2&correct=no&page=50", BROWSE_GOAL_S),
        ("browse: text search", f"{base}/browse?text=q77777+how", BROWSE_GOAL_S),
        ("browse: rejections, truncated", f"{base}/browse?kind=rejections&reason=truncated", BROWSE_GOAL_S),
        ("question: the first", f"{base}/question", BROWSE_GOAL_S),
        ("question: found by its text", f"{base}/question?q=view+q50000+how", BROWSE_GOAL_S),
    ]


def measure(build: Path, rounds: int) -> None:
    report = json.loads((build / "build_report.json").read_text())
    viewer = subprocess.Popen(
        [sys.executable, "-m", "cotforge", "view", str(build), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = viewer.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not found:
            raise SystemExit(f"the viewer did not start: {line}{viewer.stderr.read()[-2000:]}")
        base = found.group(0)
        print(f"{build}: {report['requested']:,} answers, {report['accepted']:,} accepted; viewer at {base}")
        print(f"started at {peak_rss_mb(viewer.pid):.0f} MB resident")
        print(f"{'page':<34} {'slowest s':>9} {'median s':>8} {'goal s':>6} {'vs goal':>7} {'KB':>6}")
        for name, url, goal in pages(base, report["accepted"], 50):
            times = []
            size = 0
            for _ in range(rounds):
                seconds, size = fetch(url)
                times.append(seconds)
            times.sort()
            worst = times[-1]
            print(
                f"{name:<34} {worst:>9.3f} {times[len(times) // 2]:>8.3f} {goal:>6.1f} {worst / goal:>6.2f}x "
                f"{size / 1024:>6.0f}",
                flush=True,
            )
        memory = peak_rss_mb(viewer.pid)
        print(f"server peak resident memory: {memory:.0f} MB (goal < {MEMORY_GOAL_MB}: {memory / MEMORY_GOAL_MB:.2f}x)")
    finally:
        viewer.terminate()
        viewer.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--build", type=Path, help="Build directory to reuse, or to make the build in")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.build is not None:
        if not (args.build / "build_report.json").exists():
            make_build(args.build, args.answers)
        measure(args.build, args.rounds)
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        make_build(Path(tmp) / "build", args.answers)
        measure(Path(tmp) / "build", args.rounds)


if __name__ == "__main__":
    main()
