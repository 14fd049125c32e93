"""The public Python API: the README's example runs as written, and a custom prompt keeps the store and resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cotforge
from cotforge.cli import app

README = Path(__file__).parent.parent / "README.md"
README_URL = "http://127.0.0.1:8000/v1"


def readme_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


README_STUDENT = '"HuggingFaceTB/SmolLM2-135M-Instruct"'


@pytest.mark.integration
def test_the_readme_example_runs_as_written(tmp_path: Path, scripted, student: Path, monkeypatch, capsys) -> None:
    """Every line of the README's Python section: build, custom prompt, train_student, evaluate and sweep (the
    student is the tiny Llama with SmolLM2's tokenizer in place of the real SmolLM2)."""
    code = readme_example()
    assert README_URL in code and README_STUDENT in code
    monkeypatch.chdir(tmp_path)
    code = code.replace(README_URL, scripted.url).replace(README_STUDENT, repr(str(student)))
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert "10 steps on" in printed and (tmp_path / "students" / "g5" / "train_report.json").exists()
    assert re.search(r"GSM8K sample: \d/4 right", printed)
    report = json.loads((tmp_path / "sweeps" / "svamp-demo" / "sweep_report.json").read_text())
    assert {arm["arm"] for arm in report["arms"]} == {"g1", "g5"}, "the sweep ran both arms to its report"
    assert "8/8 answered, 8 accepted" in printed  # 4 sample problems x levels 1 and 5
    assert "custom-two-sentences-1 4 records, 0 kept aside" in printed
    sent = [e.message for e in scripted.answered()]
    assert sum("Explain in two sentences" in m for m in sent) == 4, "the custom prompt is what was sent"
    mine = cotforge.open_build(tmp_path / "builds" / "svamp-two-sentences")
    assert {r.answer_source.value for r in mine.records()} == {"custom"}
    assert all(r.rationale.endswith("The answer is 42") for r in mine.records())


def test_a_custom_build_resumes_and_refuses_the_cli(tmp_path: Path, scripted) -> None:
    from .helpers import recipe_yaml, scripted_recipe, write_problems

    problems = write_problems(tmp_path / "p.jsonl", ["one answer=3", "two answer=4", "three answer=5"])
    recipe = scripted_recipe(problems, scripted.url)
    asked: list[str] = []

    def prompt(problem: cotforge.Problem) -> list[dict[str, str]]:
        asked.append(problem.question)
        return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": problem.question}]

    def parse(problem: cotforge.Problem, response: str) -> str | None:
        return None if problem.question.startswith("three") else response.rsplit(" ", 1)[-1]

    custom = cotforge.CustomPrompt("brief", prompt, parse)
    corpus = cotforge.build(recipe, tmp_path / "out", custom=custom)
    assert [r.predicted_answer for r in corpus.records()] == ["3", "4"]
    assert [r.reason.value for r in corpus.rejections()] == ["unparseable"], "the parser's None is kept aside"
    assert corpus.to_polars().height == 2 and len(corpus.to_dataset()) == 2
    requests = len(scripted.answered())
    again = cotforge.build(recipe, tmp_path / "out", custom=custom)
    assert len(scripted.answered()) == requests, "resumed: nothing asked twice"
    assert again.report.accepted == 2
    newer = cotforge.CustomPrompt("brief", prompt, parse, version="2")
    with pytest.raises(cotforge.BuildDirError, match="another recipe"):
        cotforge.build(recipe, tmp_path / "out", custom=newer)
    refused = CliRunner().invoke(
        app, ["build", "--recipe", str(recipe_yaml(tmp_path / "r.yaml", corpus.recipe)), "-o", str(tmp_path / "o")]
    )
    assert refused.exit_code == 2 and "Python prompt custom-brief-1" in refused.output


def test_the_public_names_resolve() -> None:
    for name in cotforge.__all__:
        assert getattr(cotforge, name) is not None
    with pytest.raises(AttributeError):
        cotforge.not_a_name  # noqa: B018


def test_cotforge_train_is_the_trainers_package_and_names_the_call_that_fine_tunes() -> None:
    import sys

    config = cotforge.TrainConfig(model="student", dataset="corpus")  # imports cotforge.train.config
    assert cotforge.train is sys.modules["cotforge.train"] and cotforge.train.TrainConfig is type(config)
    with pytest.raises(TypeError, match=r"cotforge\.train_student"):
        cotforge.train(config)
    from cotforge.api import train_student

    assert cotforge.train_student is train_student
