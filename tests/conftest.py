from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PAPER_SVAMP = FIXTURES / "eit-nlp-svamp"


def paper_file(name: str) -> list[dict]:
    """One of the paper's released SVAMP files (gzipped in the fixtures)."""
    with gzip.open(PAPER_SVAMP / f"{name}.gz", "rt", encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(autouse=True)
def _no_network_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing in the tests may reach a real API with a real key.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
