"""Generation throughput against a scripted OpenAI-compatible server with fixed latency, and no-op resume cost.

    python benchmarks/build_throughput.py [--latency 0.1] [--concurrency 1,4,16,64,128,256,512]
        [--peers-python /path/to/venv/bin/python] [--resume-records 10000]

For each concurrency c, cotforge builds c*20 answers (at least 200) through the real openai client and
`cotforge.build` (plan, store, parse, verify, Parquet export included); the ideal is c / latency requests per second.
With --peers-python (a venv with bespokelabs-curator and distilabel), the same prompts go through Curator's LLM
and distilabel's OpenAILLM at the same concurrency, in the same run, against the same server process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


import cotforge  # noqa: E402
from cotforge.schemas import Recipe  # noqa: E402


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "serve_scripted.py"), str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    return process, process.stdout.readline().strip()


def recipe_for(problems: Path, url: str, concurrency: int) -> Recipe:
    return Recipe.model_validate(
        {
            "name": "bench",
            "sources": [{"path": str(problems), "answer_type": "number"}],
            "teachers": [{"model": "scripted", "base_url": url, "max_concurrency": concurrency}],
            "granularities": [1],
            "sampling": {"max_tokens": 64},
        }
    )


def cotforge_rps(url: str, n: int, concurrency: int, workdir: Path) -> tuple[float, float]:
    problems = workdir / f"problems-{concurrency}-{n}.jsonl"
    problems.write_text(
        "".join(json.dumps({"question": f"c{concurrency} q{i} answer=5", "answer": "5"}) + "\n" for i in range(n))
    )
    recipe = recipe_for(problems, url, concurrency)
    started = time.monotonic()
    report = cotforge.build(recipe, workdir / f"out-{concurrency}-{n}").report
    seconds = time.monotonic() - started
    assert report.accepted == n, report
    return n / seconds, seconds


def peer_rps(python: str, script: str, url: str, n: int, concurrency: int) -> float | None:
    cache = Path(python).parent.parent / "tiktoken-cache"  # made by benchmarks/peers/setup.sh
    # Offline: no telemetry (Curator sends it to PostHog unless TELEMETRY_ENABLED=false), no Hub calls.
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(cache),
        "HF_HUB_OFFLINE": "1",
        "TELEMETRY_ENABLED": "false",
        "CURATOR_DISABLE_CACHE": "true",
    }
    result = subprocess.run(
        [python, str(ROOT / "benchmarks" / "peers" / script), url, str(n), str(concurrency)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    if result.returncode != 0:
        print(f"  {script} failed: {result.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return data["answers"] / data["seconds"]


def _rate(value: float | None) -> str:
    return f"{value:>9.1f}" if value else f"{'-':>9}"


def _ratio(ours: float, theirs: float | None) -> str:
    return f"{ours / theirs:>6.2f}x" if theirs else f"{'-':>7}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", default="1,4,16,64,128,256,512")
    parser.add_argument("--peers-python", default=None)
    parser.add_argument("--resume-records", type=int, default=10_000)
    args = parser.parse_args()
    server, url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            print(f"scripted server {url}, latency {args.latency * 1000:.0f} ms")
            header = f"{'conc':>5} {'answers':>7} {'ideal r/s':>9} {'cotforge':>9} {'of ideal':>8}"
            if args.peers_python:
                header += f" {'curator':>9} {'distilabel':>10} {'vs cur':>7} {'vs dist':>7}"
            print(header)
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                n = max(200, concurrency * 20)
                ideal = concurrency / args.latency
                ours, _ = cotforge_rps(url, n, concurrency, workdir)
                line = f"{concurrency:>5} {n:>7} {ideal:>9.1f} {ours:>9.1f} {ours / ideal:>8.1%}"
                if args.peers_python:
                    cur = peer_rps(args.peers_python, "curator_run.py", url, n, concurrency)
                    dist = peer_rps(args.peers_python, "distilabel_run.py", url, n, concurrency)
                    line += f" {_rate(cur)} {_rate(dist):>10} {_ratio(ours, cur)} {_ratio(ours, dist)}"
                print(line, flush=True)
            if args.resume_records:
                n = args.resume_records
                _, first = cotforge_rps(url, n, 256, workdir)
                _, again = cotforge_rps(url, n, 256, workdir)
                print(
                    f"resume: build of {n:,} answers {first:.1f} s; no-op resume of it {again:.2f} s "
                    f"({again / first:.1%} of the build)"
                )
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
