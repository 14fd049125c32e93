"""Helpers the tests share (fixtures stay in conftest.py): the fixture files, and sources and recipes that the
scripted teacher server answers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
PAPER_SVAMP = FIXTURES / "eit-nlp-svamp"
PAPER_SAMPLES = FIXTURES / "eit-nlp-samples"  # 318 rows of seven data sets: an import in a second


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

    plain = json.loads(json.dumps({"configs": configs}))  # no shared objects: safe_dump would write them as aliases
    return f"---\n{yaml.safe_dump(plain)}---\n# a corpus\n".encode()


def made_sweep(folder: Path, right: dict[int, list[bool]], question: str = "question {}"):
    """A sweep folder made by hand: one student, a finished cell per level in `right` (each held-out question right
    or wrong; `question` makes a question's text from its id), no report yet. Returns its SweepDir."""
    import polars as pl

    from cotforge.sweeps import CellResult, SweepSettings
    from cotforge.sweeps.layout import SweepDir

    sweep = SweepDir(folder)
    sweep.cells_dir.mkdir(parents=True)
    sweep.settings_path.write_text(
        SweepSettings(corpus="corpus", students=["student"], levels=list(right)).model_dump_json()
    )
    ids = [f"q{i}" for i in range(len(next(iter(right.values()))))]
    held = {"check": {"training_problems": 9, "questions": len(ids)}, "problem_ids": ids, "train_problem_ids": []}
    sweep.held_out_path.write_text(json.dumps(held))
    for level, marks in right.items():
        name = f"student-g{level}-seed1"
        sweep.cell_dir(name).mkdir()
        predictions = sweep.cell_dir(name) / "predictions.parquet"
        pl.DataFrame(
            {"problem_id": ids, "question": [question.format(i) for i in ids], "gold_answer": ["5"] * len(ids),
             "predicted_answer": ["5" if r else "7" for r in marks], "correct": marks}
        ).write_parquet(predictions)  # fmt: skip
        cell = CellResult(
            name=name, student="student", arm=f"g{level}", subset=f"t-g{level}-cot", level=level, seed=1, steps=2,
            train_examples=9, completion_tokens=None, final_loss=None, mean_rationale_words=10.0 * level,
            accuracy=sum(marks) / len(ids), interval=(0.0, 1.0), correct=sum(marks), total=len(ids),
            parsed=len(ids), train_wall_s=1.0, eval_wall_s=1.0, predictions=predictions.relative_to(folder).as_posix(),
        )  # fmt: skip
        sweep.cell_file(name).write_text(cell.model_dump_json())
    return sweep
