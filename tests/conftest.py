"""Fixtures shared by the tests; plain helpers are in tests/helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import PAPER_SVAMP

# pytest-xdist's workers (scripts/test.sh) start with COLUMNS=80 and LINES=24 set; rich reads them once, when the CLI's
# consoles are made, and would then print every table 80 wide whatever COLUMNS a test's command is given.
for terminal_size in ("COLUMNS", "LINES"):
    os.environ.pop(terminal_size, None)

# Each of scripts/test.sh's workers takes its share of the cores for torch (read when torch is first imported, and by
# the processes a test starts), so two workers do not run two threads each on two cores and wait on each other.
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))


@pytest.fixture(autouse=True)
def _no_network_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing in the tests may reach a real API with a real key.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture
def scripted():
    from .scripted_server import ScriptedServer

    server = ScriptedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def paper_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build directory: the paper's SVAMP CoTs, imported once for every test that reads them."""
    from cotforge.paper import import_paper

    out = tmp_path_factory.mktemp("paper")
    import_paper(PAPER_SVAMP, out)
    return out


@pytest.fixture(scope="session")
def student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama with SmolLM2's real tokenizer (tests/students.py)."""
    from .students import tiny_student

    return tiny_student(tmp_path_factory.mktemp("student"))
