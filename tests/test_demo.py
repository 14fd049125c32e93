"""The demo stops with a sentence when its teacher server dies: how it ended, and the server's log; never a
traceback from a later step. Stand-in servers that kill themselves with SIGILL play llama.cpp built for the wrong
processor (AMX on a virtualised Xeon)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .local_teacher import free_port, server_death

ROOT = Path(__file__).resolve().parent.parent
SIGILL_NOW = f"{sys.executable} -c 'import os, signal; os.kill(os.getpid(), signal.SIGILL)'"

# Answers the model list like a server that has loaded its model, then dies on the first completion.
SIGILL_ON_FIRST_COMPLETION = """
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "smollm2-135m-instruct", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        print("trap invalid opcode in libggml-cpu.so", flush=True)
        os.kill(os.getpid(), signal.SIGILL)
print("system_info: AMX_INT8 = 1", flush=True)
HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def run_demo(tmp_path: Path, server: str, port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEMO_OUT": str(tmp_path / "out"), "DEMO_PORT": str(port), "DEMO_TEACHER_SERVER": server}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--no-setup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_teacher_server_that_dies_at_once_stops_the_demo_with_its_log(tmp_path: Path) -> None:
    server = f"echo 'llama_model_loader: loaded meta data'; {SIGILL_NOW}"
    result = run_demo(tmp_path, server, free_port())
    assert result.returncode != 0
    assert "the teacher server was killed by signal ILL (Illegal instruction) (while starting)" in result.stderr
    assert "llama_model_loader: loaded meta data" in result.stderr  # its log
    assert "bash scripts/setup-test-servers.sh" in result.stderr  # what to do
    assert "Traceback" not in result.stdout + result.stderr
    assert "[3/6]" not in result.stdout  # no step after the failed one ran


@pytest.mark.integration
def test_a_teacher_server_that_dies_on_its_first_completion_stops_the_demo_before_training(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "server.py"
    script.write_text(SIGILL_ON_FIRST_COMPLETION)
    result = run_demo(tmp_path, f"{sys.executable} {script} {port}", port)
    assert result.returncode != 0
    assert "the teacher server was killed by signal ILL (Illegal instruction) (during the build)" in result.stderr
    assert "trap invalid opcode in libggml-cpu.so" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "[4/6]" not in result.stdout


def test_a_dead_servers_message_names_the_signal_and_quotes_its_log() -> None:
    with tempfile.TemporaryFile(mode="w+") as log:
        command = [sys.executable, "-c", "import os, signal; print('loading', flush=True); os.kill(os.getpid(), 4)"]
        process = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
        message = server_death(process.returncode, log)
    assert message.startswith("the llama.cpp server was killed by Illegal instruction")
    assert "    loading" in message
