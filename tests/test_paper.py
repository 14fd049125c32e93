"""Import of the paper's released files: every file name spelling, every data set, nothing dropped silently."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.corpus import BuildDir
from cotforge.paper import classify, import_paper, split_choices
from cotforge.schemas import CoTFormat, PromptMode, RejectionReason

from .helpers import FIXTURES, PAPER_SAMPLES


def _release_file_names() -> list[str]:
    with gzip.open(FIXTURES / "eit-nlp-svamp" / "dataset_info.json.gz", "rt") as handle:
        info = json.load(handle)
    return sorted({entry["file_name"] for entry in info.values()})


def test_every_file_of_the_release_is_classified() -> None:
    names = _release_file_names()
    assert len(names) == 155  # 156 entries: math_human and math_onlyans both read math_human.json
    views = {name: classify(Path(name)) for name in names}
    unknown = {name: why for name, why in views.items() if isinstance(why, str)}
    assert unknown == {}
    datasets = {v.dataset for found in views.values() for v in found}
    assert datasets == {"svamp", "gsm8k", "aqua", "math", "csqa", "obqa", "strategyqa"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SVAMP_ChatGPT_level5_ranked.json", ("svamp", "gpt-4o", 5, CoTFormat.cot)),
        ("0_SVAMP_chatgpt_level3BSM.json.gz", ("svamp", "gpt-4o", 3, CoTFormat.subquestions)),
        ("commonsenseQA_chatgpt_level_4_ranked.json", ("csqa", "gpt-4o", 4, CoTFormat.cot)),
        ("csqa_llama_level2_ranked.json", ("csqa", "llama-3-70b", 2, CoTFormat.cot)),
        ("math_mix_level3.json", ("math", "gpt-4o", 3, CoTFormat.cot)),
        ("math_gemini_level6_ranked.json", ("math", "gemini-1.5-flash", 6, CoTFormat.cot)),
        ("0_aqua_chatgpt_level5Sym.json", ("aqua", "gpt-4o", 5, CoTFormat.symbolic)),
        ("openbookqa_chatgpt_symbolic_level3_ranked.json", ("obqa", "gpt-4o", 3, CoTFormat.symbolic)),
        ("openbookqa_chatgpt_rar_level3_ranked.json", ("obqa", "gpt-4o", 3, CoTFormat.rar)),
        ("stqa_gemini_level1_ranked.json", ("strategyqa", "gemini-1.5-flash", 1, CoTFormat.cot)),
        ("strategyQA_onlyans.json", ("strategyqa", "answer-only", 0, CoTFormat.cot)),
        ("gsm_train_onlyans.json", ("gsm8k", "answer-only", 0, CoTFormat.cot)),
        ("ecqa_train.json", ("csqa", "human", None, CoTFormat.cot)),
        ("openbookQA_ChatGPT_0_shot_without_gt_ranked.json", ("obqa", "gpt-4o-zero-shot", None, CoTFormat.cot)),
    ],
)
def test_file_name_spellings(name: str, expected: tuple) -> None:
    (view,) = classify(Path(name))
    assert (view.dataset, view.teacher, view.granularity, view.fmt) == expected


def test_math_fields_and_the_two_views_of_its_human_file() -> None:
    (gemini,) = classify(Path("math_gemini_level2_ranked.json"))
    assert gemini.response_field == "gemini_output"
    human, answer_only = classify(Path("math_human.json"))
    assert (human.response_field, answer_only.response_field, answer_only.granularity) == ("solution", "output", 0)
    (with_gold,) = classify(Path("openbookQA_ChatGPT_0_shot_with_gt_ranked.json"))
    assert with_gold.prompt_mode is PromptMode.gold_hinted


def test_choices_split_with_doubled_labels_and_letters_in_texts() -> None:
    question, choices = split_choices("What is x? Answer Choices: (A) A) 5 (B) B) 8 (C) C) 13 (D) D) 21 (E) E) 34")
    assert question == "What is x?" and choices == ["5", "8", "13", "21", "34"]
    _, choices = split_choices("Q: Where? Answer choices: A: a B-movie set, B: populated areas, C: the desert")
    assert choices == ["a B-movie set", "populated areas", "the desert"]


@pytest.fixture(scope="module")
def samples_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("samples")
    return out, import_paper(PAPER_SAMPLES, out)


def test_samples_import_one_subset_per_data_set_and_level(samples_build: tuple[Path, object]) -> None:
    out, summary = samples_build
    subsets = BuildDir(out).read_subsets()
    assert set(subsets) == {
        "aqua-human-cot",
        "csqa-answer-only-g0-cot",
        "gsm8k-answer-only-g0-cot",
        "math-human-cot",
        "math-answer-only-g0-cot",
        "obqa-answer-only-g0-cot",
        "strategyqa-answer-only-g0-cot",
        "strategyqa-human-cot",
    }
    for name, records in subsets.items():
        assert len({r.dataset for r in records}) == 1, name
    # the answer-only baseline is level 0, its bare answers read as answers
    assert all(r.correct and r.answer_source.value == "bare" for r in subsets["csqa-answer-only-g0-cot"])
    aqua = {r.question: r for r in subsets["aqua-human-cot"]}
    assert aqua[
        "A man can swim in still water at 7.5 km/h, but takes twice as long to swim upstream than downstream."
        " The speed of the stream is?"
    ].choices == ["3", "2.5", "2.25", "1.5", "4"]
    # MATH gold cut short in the release is recovered from the solution's \boxed{}
    math_gold = {r.gold_answer for r in subsets["math-answer-only-g0-cot"]}
    assert {"2\\sqrt{5}", "\\frac{1}{2}", "441\\text{ pounds}"} <= math_gold
    # every row is accounted for, file by file
    for file in summary.files:
        assert file.rows == file.imported + sum(file.rejected.values()), file


def test_rows_not_in_any_gold_file_are_counted_and_kept_aside(tmp_path: Path) -> None:
    folder = tmp_path / "release"
    shutil.copytree(PAPER_SAMPLES, folder)
    teacher = [{"instruction": "Could a cat fly to the moon?", "output": "Cats cannot fly. The answer is False"}]
    rows = json.loads((folder / "stqa_human_annotation.json").read_text())[:3]
    (folder / "stqa_gemini_level1_ranked.json").write_text(json.dumps(rows + teacher))
    summary = import_paper(folder, tmp_path / "out")
    (file,) = [f for f in summary.files if f.file == "stqa_gemini_level1_ranked.json"]
    assert (file.rows, file.imported, file.rejected) == (4, 3, {"no_gold": 1})
    assert file.no_gold == ["Could a cat fly to the moon?"]
    no_gold = [r for r in BuildDir(tmp_path / "out").read_rejections() if r.reason is RejectionReason.no_gold]
    assert [r.dataset for r in no_gold] == ["strategyqa"]
    assert "strategyqa-gemini-1.5-flash-g1-cot" in summary.report.subsets


def test_import_cli_prints_a_summary_per_file(tmp_path: Path) -> None:
    args = ["import-paper", str(PAPER_SAMPLES), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "math_human.json" in result.output and "unparseable: 2" in result.output
    assert "csqa-answer-only-g0-cot" in result.output
