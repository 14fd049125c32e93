"""A local server with one slot (llama.cpp's default) flooded by a build: fixed versus adaptive requests in flight.

    python benchmarks/single_slot.py [--answers 24] [--concurrency 16] [--latency 0.15] [--timeout 1.0]

The scripted server answers one chat at a time (latency seconds each) and keeps working on requests whose client
gave up, as a real single-slot server does. Both runs happen in this process against fresh servers; the fixed run
is cotforge with the window's cut switched off (the behaviour before adaptive concurrency).
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
from cotforge.builders.teachers import ratelimit  # noqa: E402
from tests.helpers import scripted_recipe, write_problems  # noqa: E402
from tests.scripted_server import ScriptedServer  # noqa: E402


def run(args: argparse.Namespace, adaptive: bool) -> tuple[int, int, int, float]:
    original = ratelimit.AdaptiveConcurrency.release

    async def never_cut(self: ratelimit.AdaptiveConcurrency, started: float, timed_out: bool) -> None:
        await original(self, started, False)

    if not adaptive:
        ratelimit.AdaptiveConcurrency.release = never_cut  # type: ignore[method-assign]
    server = ScriptedServer(slots=1, latency_s=args.latency).start()
    try:
        folder = Path(tempfile.mkdtemp())
        problems = write_problems(folder / "p.jsonl", [f"q{i} answer=5" for i in range(args.answers)])
        teacher = {"max_concurrency": args.concurrency, "timeout_s": args.timeout, "max_retries": 8}
        recipe = scripted_recipe(problems, server.url, teacher=teacher)
        started = time.monotonic()
        report = cotforge.build(recipe, folder / "out").report
        return report.accepted, report.failed, len(server.log), time.monotonic() - started
    finally:
        server.stop()
        ratelimit.AdaptiveConcurrency.release = original  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()
    results = {name: run(args, adaptive) for name, adaptive in (("fixed", False), ("adaptive", True))}
    setup = f"{args.answers} answers, {args.concurrency} in flight, one slot of {args.latency:g} s"
    print(f"{setup}, timeout {args.timeout:g} s")
    print("| window | accepted | failed | requests sent | wall s |")
    print("|---|---:|---:|---:|---:|")
    for name, (accepted, failed, sent, wall) in results.items():
        print(f"| {name} | {accepted} | {failed} | {sent} | {wall:.1f} |")
    fixed, adaptive = results["fixed"], results["adaptive"]
    per_answer = [sent / max(accepted, 1) for accepted, _, sent, _ in (fixed, adaptive)]
    print(f"requests per accepted answer: fixed {per_answer[0]:.1f}, adaptive {per_answer[1]:.1f}")


if __name__ == "__main__":
    main()
