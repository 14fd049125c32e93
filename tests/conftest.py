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


@pytest.fixture
def scripted():
    from .scripted_server import ScriptedServer

    server = ScriptedServer().start()
    yield server
    server.stop()


def write_problems(path: Path, questions: list[str], gold: str = "5") -> Path:
    """A local JSONL source whose questions carry the scripted server's markers."""
    path.write_text("".join(json.dumps({"question": q, "answer": gold}) + "\n" for q in questions))
    return path


def scripted_recipe(problems: Path, url: str, **changes):
    from cotforge.schemas import Recipe

    teacher = {"model": "scripted", "base_url": url, "retry_backoff_s": 0.01, "timeout_s": 1.0, "max_retries": 3}
    teacher.update(changes.pop("teacher", {}))
    fields = {
        "sources": [{"path": str(problems), "answer_type": "number"}],
        "teachers": [teacher],
        "granularities": [2],
        "prompt_mode": "blind",
        **changes,
    }
    return Recipe.model_validate(fields)


def recipe_yaml(path: Path, recipe) -> Path:
    """A Recipe written as the YAML file `--recipe` reads."""
    import yaml

    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json", exclude_defaults=True)))
    return path


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
