"""Generation throughput against a scripted OpenAI-compatible server with fixed latency, and no-op resume cost.

    python benchmarks/build_throughput.py [--latency 0.1] [--concurrency 1,4,16,64,128,256,512]
        [--answers-per-slot 20] [--peers-python /path/to/venv/bin/python]
        [--data-designer-python /path/to/venv/bin/python] [--resume-records 10000]

For each concurrency c, cotforge builds c * answers-per-slot answers (at least 200) through `cotforge.build`
(plan, store, parse, verify, Parquet export included); the ideal is c / latency requests per second.
With --peers-python (a venv with bespokelabs-curator and distilabel) and --data-designer-python (a venv with
data-designer; benchmarks/peers/setup.sh makes both), the same prompts go through Curator's LLM, distilabel's
OpenAILLM and Data Designer's `create` at the same concurrency, in the same run, against the same server process.
Each tool's rate is printed with its share of the ideal, its process's CPU ms per answer and cotforge's rate
divided by it; first comes a bare aiohttp loop sending the same requests, what any client reached at that moment.
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
from typing import NamedTuple

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


class Run(NamedTuple):
    """One tool's answers, the seconds they took and the CPU seconds its process spent on them (all its threads;
    the server's process is not counted). CPU per answer is what a shared machine's load changes least."""

    answers: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.answers / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.answers


def cotforge_run(url: str, n: int, concurrency: int, workdir: Path) -> Run:
    workdir.mkdir(exist_ok=True)
    problems = workdir / f"problems-{concurrency}-{n}.jsonl"
    problems.write_text(
        "".join(json.dumps({"question": f"c{concurrency} q{i} answer=5", "answer": "5"}) + "\n" for i in range(n))
    )
    recipe = recipe_for(problems, url, concurrency)
    started, cpu = time.monotonic(), time.process_time()
    report = cotforge.build(recipe, workdir / f"out-{concurrency}-{n}").report
    run = Run(n, time.monotonic() - started, time.process_time() - cpu)
    assert report.accepted == n, report
    return run


def floor_run(url: str, n: int, concurrency: int) -> Run:
    """The same requests from a bare aiohttp loop that only decodes each reply: what any Python client can reach on
    this machine at this moment, so that the machine's share of a gap to the ideal is told from the client's."""

    async def run() -> Run:
        requests = iter(range(n))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def worker() -> None:
                for i in requests:
                    messages = [{"role": "user", "content": f"floor q{i} answer=5"}]
                    body = {"model": "scripted", "messages": messages, "max_tokens": 64}
                    async with session.post(f"{url}/chat/completions", json=body) as response:
                        json.loads(await response.read())

            started, cpu = time.monotonic(), time.process_time()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return Run(n, time.monotonic() - started, time.process_time() - cpu)

    return asyncio.run(run())


def peer_run(python: str, script: str, url: str, n: int, concurrency: int) -> Run | None:
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
    return Run(data["answers"], data["seconds"], data["cpu_seconds"])


PEER_SCRIPTS = {"curator": "curator_run.py", "distilabel": "distilabel_run.py", "data-designer": "data_designer_run.py"}


def _cell(run: Run | None, ideal: float, ours: Run | None = None) -> str:
    """One tool's column: answers/s, share of the ideal, CPU ms per answer; for a peer, cotforge's rate divided
    by its rate."""
    if run is None:
        return f"{'failed':>30}"  # the peer's own error is printed on stderr
    cell = f"{run.rate:>8.1f} {run.rate / ideal:>6.1%} {run.cpu_ms:>5.2f}"
    return cell + (f" {ours.rate / run.rate:>7.2f}x" if ours else "")


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
            latency_ms = args.latency * 1000
            print(f"scripted server {url}, latency {latency_ms:.0f} ms; each: r/s, of ideal, CPU ms/answer, cotforge x")
            # The peers import their libraries before their clocks start; this untimed build does the same for the
            # modules cotforge imports on first use (datasketch and scipy for the export's quality signals).
            cotforge_run(url, 1, 1, workdir / "warm-up")
            one = cotforge_run(url, 1, 1, workdir / "one").seconds
            print(f"a build of one answer: {one:.2f} s, {one - args.latency:.2f} s of it besides the request")
            print(
                f"{'conc':>5} {'answers':>7} {'ideal r/s':>9} {'bare aiohttp':>21} {'cotforge':>21}"
                + "".join(f" {p:>30}" for p in peers)
            )
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                n = max(200, concurrency * args.answers_per_slot)
                ideal = concurrency / args.latency
                floor = floor_run(url, n, concurrency)
                ours = cotforge_run(url, n, concurrency, workdir)
                line = f"{concurrency:>5} {n:>7} {ideal:>9.1f} {_cell(floor, ideal)} {_cell(ours, ideal)}"
                for name, python in peers.items():
                    line += " " + _cell(peer_run(python, PEER_SCRIPTS[name], url, n, concurrency), ideal, ours)
                print(line, flush=True)
            if args.resume_records:
                n = args.resume_records
                first = cotforge_run(url, n, 256, workdir).seconds
                again = cotforge_run(url, n, 256, workdir).seconds
                print(
                    f"resume: build of {n:,} answers {first:.1f} s; no-op resume of it {again:.2f} s "
                    f"({again / first:.1%} of the build)"
                )
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
