"""`cotforge check`: training questions that are also evaluation questions, found, reported and dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.contamination import (
    check,
    check_build,
    check_records,
    default_against,
    training_questions,
    word_ngrams,
)
from cotforge.corpus import BuildDir
from cotforge.exitcodes import CONTAMINATED
from cotforge.paper import import_paper

from .helpers import PAPER_SAMPLES


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train")
    import_paper(PAPER_SAMPLES, out)
    return out


def _test_file(folder: Path, questions: list[str]) -> Path:
    path = folder / "test.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": "x"}) + "\n" for q in questions))
    return path


def test_an_injected_test_question_is_found_and_the_exit_code_says_so(build: Path, tmp_path: Path) -> None:
    train = BuildDir(build).read_subsets()["strategyqa-human-cot"]
    leaked = train[3].question
    reworded = "Tell me: " + train[7].question.upper().replace("?", "") + ", please?"  # case and punctuation differ
    test = _test_file(tmp_path, [leaked, reworded, "What is the capital of a country that does not exist at all?"])
    result = CliRunner().invoke(app, ["check", str(build), "--against", str(test), "--fail-on-overlap"])
    assert result.exit_code == CONTAMINATED, result.output
    report = json.loads(BuildDir(build).contamination_path.read_text())
    found = {o["train_question"]: o["kind"] for o in report["overlaps"]}
    assert found == {leaked: "exact", train[7].question: "ngram"}
    assert "2 of " in result.output
    clean = CliRunner().invoke(app, ["check", str(build), "--against", str(_test_file(tmp_path, ["Unrelated?"]))])
    assert clean.exit_code == 0 and "0 of" in clean.output


def test_drop_writes_a_build_without_the_overlapping_questions(build: Path, tmp_path: Path) -> None:
    train = BuildDir(build).read_subsets()
    leaked = train["strategyqa-human-cot"][0].question
    result = CliRunner().invoke(
        app, ["check", str(build), "--against", str(_test_file(tmp_path, [leaked])), "--drop", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    clean = BuildDir(tmp_path / "c").read_subsets()
    # the question is gone from every subset that held it (human CoT and the answer-only baseline), nothing else
    for name, records in train.items():
        expected = [r.key for r in records if r.question != leaked]
        assert [r.key for r in clean[name]] == expected
    assert sum(len(r) for r in clean.values()) == sum(len(r) for r in train.values()) - 2
    report = BuildDir(tmp_path / "c").read_report()
    assert report.accepted == sum(len(r) for r in clean.values())
    assert json.loads(BuildDir(tmp_path / "c").contamination_path.read_text())["overlaps"] == []


def test_short_questions_compare_whole_and_ngrams_need_n_words(build: Path) -> None:
    assert word_ngrams("Is it hot?", 8) == {"is it hot"}
    assert len(word_ngrams("one two three four five six seven eight nine", 8)) == 2
    records = BuildDir(build).read_subsets()["gsm8k-answer-only-g0-cot"]
    assert check(records, {"t": ["Is it hot?"]}).overlaps == []
    assert len(check(records, {"t": [records[0].question[:60] + " and more?"]}).overlaps) == 1


def test_an_unloadable_evaluation_set_is_reported_not_ignored(build: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", str(build), "--against", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2  # the check asked for was not done
    assert "not checked" in result.output and "missing.jsonl: no such file" in result.output
    bad = CliRunner().invoke(app, ["check", str(tmp_path / "nope")])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


def test_train_warns_from_the_saved_report(build: Path, tmp_path: Path) -> None:
    from cotforge.contamination import training_contamination

    leaked = BuildDir(build).read_subsets()["gsm8k-answer-only-g0-cot"][0].question
    test = _test_file(tmp_path, [leaked])
    found = training_contamination(build, "gsm8k-answer-only-g0-cot", [str(test)])
    assert found is not None and found.overlaps == 1 and found.summary.startswith("1 of 40")
    assert training_contamination(tmp_path) is None, "never checked: nothing saved"
    assert CliRunner().invoke(app, ["check", str(build), "--against", str(test)]).exit_code == 0
    saved = training_contamination(build)  # reads contamination.json
    assert saved is not None and saved.overlaps >= 1
    train = CliRunner().invoke(app, ["train", "--dataset", str(build), "--model", str(tmp_path / "no-such-student")])
    assert train.exit_code == 2 and "warning: contamination" in train.output, train.output


def test_a_near_variant_of_a_test_question_is_reported(build: Path, tmp_path: Path) -> None:
    """The same story with its numbers changed shares no 8-gram when the numbers sit every few words, yet it is the
    same question: the check reports it as a near-variant with its similarity, and `--similarity 1` leaves it out."""
    train = BuildDir(build).read_subsets()["strategyqa-human-cot"]
    original = "Tom has 3 red, 4 blue, 5 green and 6 black pens; count them."
    variant = "Tom has 8 red, 2 blue, 9 green and 1 black pens; count them."
    rows = [r.model_copy(update={"question": original}) if i == 0 else r for i, r in enumerate(train)]
    report = check(rows, {"test": [variant]}, ngram=8)
    assert [(o.kind, o.eval_question) for o in report.overlaps] == [("near", variant)]
    assert 0.8 <= report.overlaps[0].similarity < 1 and "at least 0.80 similar" in report.summary()
    assert check(rows, {"test": [variant]}, ngram=8, near=None).overlaps == []
    test = _test_file(tmp_path, [variant, train[5].question.replace("?", "")])
    result = CliRunner().invoke(app, ["check", str(build), "--against", str(test), "--similarity", "1"])
    assert result.exit_code == 0 and "near (" not in result.output and "at least" not in result.output


def test_the_check_of_a_build_reads_its_questions_as_the_records_check_did(build: Path, tmp_path: Path) -> None:
    records = BuildDir(build).read_records()
    questions = list(training_questions(build))
    assert [(q.problem_id, q.dataset, q.question) for q in questions] == [
        (r.problem_id, r.dataset, r.question) for r in records
    ]
    test = _test_file(tmp_path, [records[0].question, records[-1].question[:70] + " more words here?"])
    streamed, listed = check_build(build, [str(test)]), check_records(records, [str(test)])
    assert streamed.overlaps == listed.overlaps and len(streamed.overlaps) == 2
    assert streamed.train_questions == listed.train_questions
    assert default_against(training_questions(build)) == default_against(records) != []  # the corpus's own sets


def test_questions_that_look_like_markup_are_printed_as_written(tmp_path: Path) -> None:
    # A training question holding "[/]" made rich's markup parser raise while the overlaps table printed.
    from .helpers import made_record

    question = "Split [/] the apples [bold]evenly[/bold] among 3 friends: how many each?"
    build = tmp_path / "build"
    BuildDir(build).write_outputs([made_record(question, "k1", "5", "We divide.\nThe answer is 5")], [])
    against = str(_test_file(tmp_path, [question]))
    result = CliRunner().invoke(app, ["check", str(build), "--against", against], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert question in result.output
