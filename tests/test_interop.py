from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.corpus import BuildDir
from cotforge.interop import export
from cotforge.paper import import_paper
from cotforge.schemas import PromptMode

from .helpers import FIXTURES

PAPER = FIXTURES / "eit-nlp-svamp"


@pytest.fixture(scope="module")
def paper_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("paper")
    import_paper(PAPER, out)
    return out


def test_import_paper_every_teacher_level_and_format(paper_build: Path) -> None:
    subsets = BuildDir(paper_build).read_subsets()
    assert len(subsets) == 24  # levels: GPT-4o 6, Gemini 6, LLaMA 4; 6 GPT-4o format files; human; answer-only
    assert {"human-cot", "answer-only-g0-cot", "gpt-4o-g5-symbolic", "llama-3-70b-g4-cot"} <= set(subsets)
    gpt5 = subsets["gpt-4o-g5-cot"]
    assert len(gpt5) == 699 and all(r.prompt_mode is PromptMode.unknown and r.dataset == "svamp" for r in gpt5)
    assert 0.98 <= sum(r.correct for r in gpt5) / len(gpt5) <= 1.0
    assert all(r.rationale.endswith(f"The answer is {r.predicted_answer}") for r in gpt5)
    human = subsets["human-cot"]
    assert human[0].granularity is None and all(r.correct for r in human)
    report = BuildDir(paper_build).read_report()
    assert report.requested == report.accepted + sum(report.rejected.values())
    # one GPT-4o row ends "the answer is not consistent with the given answer": a negated line, no answer
    assert [r.reason.value for r in BuildDir(paper_build).read_rejections()] == ["unparseable"]


def test_import_paper_cli_reports_accuracy(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["import-paper", str(PAPER), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "gpt-4o-g3-subquestions" in result.output and "%" in result.output
    missing = CliRunner().invoke(app, ["import-paper", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert missing.exit_code == 2 and "no such folder" in missing.output


def test_export_llama_factory(paper_build: Path, tmp_path: Path) -> None:
    export(paper_build, tmp_path, "llama-factory", ["gpt-4o-g1-cot"])
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["gpt-4o-g1-cot"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output"}
    rows = json.loads((tmp_path / info["gpt-4o-g1-cot"]["file_name"]).read_text())
    assert len(rows) == 700 and rows[0]["output"].endswith("The answer is 145")
    assert rows[0]["instruction"].startswith("There are 87 oranges")


@pytest.mark.parametrize(
    ("fmt", "keys"), [("trl-messages", {"messages"}), ("trl-prompt-completion", {"prompt", "completion"})]
)
def test_export_trl(paper_build: Path, tmp_path: Path, fmt: str, keys: set[str]) -> None:
    (path,) = export(paper_build, tmp_path, fmt, ["human-cot"])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 700 and set(rows[0]) == keys
    if fmt == "trl-messages":
        assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]


def test_export_unknown_format_and_subset(paper_build: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export(paper_build, tmp_path, "csv")
    result = CliRunner().invoke(
        app, ["export", str(paper_build), "-f", "trl-messages", "-o", str(tmp_path), "--subset", "nope"]
    )
    assert result.exit_code == 2 and "no subset nope" in result.output
