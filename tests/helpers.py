"""Helpers the tests share (fixtures stay in conftest.py): the fixture files, and sources and recipes that the
scripted teacher server answers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
PAPER_SVAMP = FIXTURES / "eit-nlp-svamp"


def paper_file(name: str) -> list[dict]:
    """One of the paper's released SVAMP files (gzipped in the fixtures)."""
    with gzip.open(PAPER_SVAMP / f"{name}.gz", "rt", encoding="utf-8") as handle:
        return json.load(handle)


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


def made_record(
    question: str, key: str, predicted: str, rationale: str, level: int = 2, sample: int = 0, steps: int = 2
):
    """A record made by hand (teacher `t`, data set `toy`, gold 5): its answer, rationale and level as given."""
    from cotforge.schemas import CoTRecord

    return CoTRecord(
        key=key,
        problem_id=question,
        dataset="toy",
        teacher="t",
        teacher_model="t",
        granularity=level,
        format="cot",
        prompt_mode="blind",
        prompt_version="v1",
        sample_index=sample,
        sampling=None,
        source_split="train",
        question=f"What is {question}?",
        gold_answer="5",
        answer_type="number",
        messages_sent=[],
        rationale=rationale,
        steps=["step"] * steps,
        predicted_answer=predicted,
        correct=predicted == "5",
    )


def records_parquet(records: list) -> bytes:
    """The records as one Parquet file, as a repo on the Hub would hold them."""
    import io

    from cotforge.schemas import CoTRecord
    from cotforge.schemas.tables import to_frame

    buffer = io.BytesIO()
    to_frame(records, CoTRecord).write_parquet(buffer)
    return buffer.getvalue()


def repo_card(configs: list[dict]) -> bytes:
    """A dataset card whose YAML header lists `configs`."""
    import yaml

    return f"---\n{yaml.safe_dump({'configs': configs})}---\n# a corpus\n".encode()
