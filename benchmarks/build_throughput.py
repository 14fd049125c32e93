"""Generation throughput against a scripted OpenAI-compatible server with fixed latency, and no-op resume cost.

    python benchmarks/build_throughput.py [--latency 0.1] [--concurrency 1,4,16,64,128,256,512]
        [--answers-per-slot 20] [--peers-python /path/to/venv/bin/python]
        [--data-designer-python /path/to/venv/bin/python] [--resume-records 10000]

For each concurrency c, cotforge builds c * answers-per-slot answers (at least 200) through `cotforge.build`
(plan, store, parse, verify, Parquet export included); the ideal is c / latency requests per second.
With --peers-python (a venv with bespokelabs-curator and distilabel) and --data-designer-python (a venv with
data-designer; benchmarks/peers/setup.sh makes both), the same prompts go through Curator's LLM, distilabel's
OpenAILLM and Data Designer's `create` at the same concurrency, in the same run, against the same server process.
Each tool's rate is printed with its share of the ideal and cotforge's rate divided by it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

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
    workdir.mkdir(exist_ok=True)
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


def floor_rps(url: str, n: int, concurrency: int) -> float:
    """The same requests from a bare aiohttp loop that only decodes each reply: what any Python client can reach on
    this machine at this moment, so that the machine's share of a gap to the ideal is told from the client's."""

    async def run() -> float:
        requests = iter(range(n))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def worker() -> None:
                for i in requests:
                    messages = [{"role": "user", "content": f"floor q{i} answer=5"}]
                    body = {"model": "scripted", "messages": messages, "max_tokens": 64}
                    async with session.post(f"{url}/chat/completions", json=body) as response:
                        json.loads(await response.read())

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return n / (time.monotonic() - started)

    return asyncio.run(run())


def peer_rps(python: str, script: str, url: str, n: int, concurrency: int) -> float | None:
    cache = Path(python).parent.parent / "tiktoken-cache"  # made by benchmarks/peers/setup.sh
    # Offline: no telemetry (Curator sends it to PostHog unless TELEMETRY_ENABLED=false), no Hub calls.
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(cache),
        "HF_HUB_OFFLINE": "1",
        "TELEMETRY_ENABLED": "false",
        "CURATOR_DISABLE_CACHE": "true",
        "NEMO_TELEMETRY_ENABLED": "false",
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


PEER_SCRIPTS = {"curator": "curator_run.py", "distilabel": "distilabel_run.py", "data-designer": "data_designer_run.py"}


def _cell(rate: float | None, ideal: float, ours: float) -> str:
    """One tool's column: its answers/s, its share of the ideal, cotforge's rate as a multiple of it."""
    if not rate:
        return f"{'failed':>24}"  # the peer's own error is printed on stderr
    return f"{rate:>8.1f} {rate / ideal:>6.1%} {ours / rate:>7.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", default="1,4,16,64,128,256,512")
    parser.add_argument("--answers-per-slot", type=int, default=20)
    parser.add_argument("--peers-python", default=None)
    parser.add_argument("--data-designer-python", default=None)
    parser.add_argument("--resume-records", type=int, default=10_000)
    args = parser.parse_args()
    pythons = {
        "curator": args.peers_python,
        "distilabel": args.peers_python,
        "data-designer": args.data_designer_python,
    }
    peers = {name: python for name, python in pythons.items() if python}
    server, url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            print(f"scripted server {url}, latency {args.latency * 1000:.0f} ms; per tool: r/s, of ideal, cotforge x")
            # The peers import their libraries before their clocks start; this untimed build does the same for the
            # modules cotforge imports on first use (datasketch and scipy for the export's quality signals).
            cotforge_rps(url, 1, 1, workdir / "warm-up")
            _, one = cotforge_rps(url, 1, 1, workdir / "one")
            print(f"a build of one answer: {one:.2f} s, {one - args.latency:.2f} s of it besides the request")
            print(
                f"{'conc':>5} {'answers':>7} {'ideal r/s':>9} {'bare aiohttp':>15} {'cotforge':>15}"
                + "".join(f" {p:>24}" for p in peers)
            )
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                n = max(200, concurrency * args.answers_per_slot)
                ideal = concurrency / args.latency
                floor = floor_rps(url, n, concurrency)
                ours, _ = cotforge_rps(url, n, concurrency, workdir)
                line = f"{concurrency:>5} {n:>7} {ideal:>9.1f} {floor:>8.1f} {floor / ideal:>6.1%}"
                line += f" {ours:>8.1f} {ours / ideal:>6.1%}"
                for name, python in peers.items():
                    line += " " + _cell(peer_rps(python, PEER_SCRIPTS[name], url, n, concurrency), ideal, ours)
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
