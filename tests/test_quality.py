"""Quality signals and their filters on hand-made subsets whose answers are known."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.corpus import BuildDir
from cotforge.dataset_cards import corpus_stats, render_card
from cotforge.quality.duplicates import NearDuplicates
from cotforge.quality.filters import QualityFilter, majority_votes
from cotforge.quality.signals import answer_rows, distinct_n, quantiles, subset_signals
from cotforge.schemas.record import CoTRecord, Rejection, RejectionReason

from .helpers import made_record, scripted_recipe, write_problems

ORIGIN = {
    "dataset": "toy",
    "teacher": "t",
    "teacher_model": "t",
    "granularity": 2,
    "format": "cot",
    "prompt_mode": "blind",
    "prompt_version": "v1",
    "sampling": None,
}


def record(question: str, sample: int, predicted: str, rationale: str | None = None) -> CoTRecord:
    text = rationale or f"For {question}, sample {sample}, we add things up. The answer is {predicted}"
    return made_record(question, f"{question}-{sample}", predicted, text, sample=sample)


def rejection(question: str, sample: int, reason: RejectionReason = RejectionReason.truncated) -> Rejection:
    return Rejection(**ORIGIN, key=f"{question}-{sample}", problem_id=question, sample_index=sample, reason=reason)


SAME = "Half of 10 is 5, since 10 split in two equal parts gives 5 each. The answer is 5"


def test_two_identical_rationales_of_two_questions_are_a_near_duplicate_pair() -> None:
    with NearDuplicates() as finder:
        finder.add("q1", "q1-0", SAME)
        finder.add("q1", "q1-1", SAME)  # the same question's samples are not counted
        finder.add("q2", "q2-0", "Count the apples one by one: there are seven of them in the basket. The answer is 7")
        finder.add("q3", "q3-0", SAME)
        assert list(finder.duplicates()) == ["q3-0"]
    with NearDuplicates() as finder:
        finder.add("q1", "q1-0", SAME)
        finder.add("q2", "q2-0", "Count the apples one by one: there are seven of them in the basket. The answer is 7")
        assert list(finder.duplicates()) == []


def test_pass_rate_agreement_and_truncation_of_known_answers() -> None:
    # q1: right 3 of 4 times; q2: one record, one truncated answer (pass rate 0.5); q3: a single answer (not n > 1).
    rows = [record("q1", 0, "5"), record("q1", 1, "5"), record("q1", 2, "6"), record("q1", 3, "5")]
    rows += [record("q2", 0, "5"), rejection("q2", 1), record("q3", 0, "9")]
    signals = subset_signals(answer_rows(rows))
    assert signals.questions == 3 and signals.multi_answer_questions == 2 and signals.answers == 7
    assert signals.mean_pass_rate == pytest.approx((0.75 + 0.5) / 2)
    q1_only = subset_signals(answer_rows(rows[:4]))
    assert q1_only.mean_pass_rate == 0.75 and q1_only.mean_majority_agreement == 0.75
    assert signals.truncation_rate == pytest.approx(1 / 7)
    assert signals.questions_all_correct == 0 and signals.questions_none_correct == 0
    assert 0 < signals.mean_pairwise_similarity < 1
    assert signals.near_duplicates == 0 and signals.steps == {f"p{q}": 2.0 for q in (10, 25, 50, 75, 90)}


def test_distinct_n_and_quantiles_on_tiny_known_cases() -> None:
    # "a b a b": tokens a, b, a, b -> 2 distinct of 4 unigrams; bigrams ab, ba, ab -> 2 of 3; trigrams aba, bab -> 2/2.
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a b a b"], 3) == 1.0
    assert distinct_n(["a b", "a b"], 2) == 0.5  # n-grams never span two rationales
    assert distinct_n(["A, b."], 1) == 1.0  # lower-cased words and punctuation marks are the tokens
    assert quantiles({1: 1, 2: 1, 3: 1, 4: 1, 10: 1}) == {"p10": 1.0, "p25": 2.0, "p50": 3.0, "p75": 4.0, "p90": 10.0}


def test_majority_keeps_the_most_common_answer_and_ties() -> None:
    rows = [record("q1", 0, "5"), record("q1", 1, "7"), record("q1", 2, "5")]  # 5 wins 2 to 1
    rows += [record("q2", 0, "3"), record("q2", 1, "4")]  # a tie: both kept
    rows += [record("q3", 0, "8")]  # one sample: kept
    decided = list(majority_votes(rows))
    outvoted = [(r.key, rejection.reason) for r, rejection in decided if rejection is not None]
    assert outvoted == [("q1-1", RejectionReason.minority_answer)]
    minority = next(rejection for _, rejection in decided if rejection is not None)
    assert minority.raw_response == rows[1].rationale and "2 of the question's 3 answers said '5'" in minority.detail


def _toy_build(out: Path) -> Path:
    # q1 right 3 of 4, q2 right 1 of 4 (one answer truncated), q3 right 0 of 2 with q1's rationale (a near-duplicate).
    records = [record("q1", 0, "5", SAME), record("q1", 1, "5"), record("q1", 2, "6"), record("q1", 3, "5")]
    records += [record("q2", 0, "5"), record("q2", 1, "4"), record("q2", 2, "4")]
    records += [record("q3", 0, "6", SAME), record("q3", 1, "6")]
    rejections = [rejection("q2", 3)]
    BuildDir(out).write_outputs(records, rejections)
    return out


def test_filters_on_pass_rate_and_near_duplicates(tmp_path: Path) -> None:
    directory = BuildDir(_toy_build(tmp_path / "toy"))
    subsets, rejections = directory.read_subsets(), directory.read_rejections()

    def kept(**bounds: object) -> list[str]:
        filtered = QualityFilter(**bounds).apply(subsets, rejections)  # type: ignore[arg-type]
        return sorted(r.key for rows in filtered.values() for r in rows)

    assert kept(min_pass_rate=0.5) == ["q1-0", "q1-1", "q1-2", "q1-3"]
    assert kept(max_pass_rate=0.3) == ["q2-0", "q2-1", "q2-2", "q3-0", "q3-1"]
    assert kept(min_pass_rate=0.2, max_pass_rate=0.3) == ["q2-0", "q2-1", "q2-2"]
    assert "q3-0" not in kept(dedup=True) and len(kept(dedup=True)) == 8  # q1-0 keeps the pair's first
    with pytest.raises(ValueError, match=r"--min-pass-rate 0\.9 is above --max-pass-rate 0\.2"):
        QualityFilter(min_pass_rate=0.9, max_pass_rate=0.2)


def test_export_and_train_take_the_filters_and_refuse_bad_values(tmp_path: Path) -> None:
    build = _toy_build(tmp_path / "toy")
    runner = CliRunner()
    result = runner.invoke(
        app, ["export", str(build), "-f", "trl-prompt-completion", "-o", str(tmp_path / "x"), "--min-pass-rate", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "x" / "t-g2-cot.jsonl").read_text().splitlines()) == 4
    result = runner.invoke(app, ["export", str(build), "-f", "trl-messages", "-o", str(tmp_path / "y"), "--dedup"])
    assert result.exit_code == 0 and len((tmp_path / "y" / "t-g2-cot.jsonl").read_text().splitlines()) == 8
    for flags, says in (
        (["--min-pass-rate", "1.5"], "--min-pass-rate 1.5: a pass rate is between 0 and 1"),
        (["--min-pass-rate", "0.9", "--max-pass-rate", "0.1"], "--min-pass-rate 0.9 is above --max-pass-rate 0.1"),
    ):
        result = runner.invoke(app, ["export", str(build), "-f", "trl-messages", "-o", str(tmp_path / "z"), *flags])
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
    for flags, says in (
        (["--max-pass-rate", "2"], "--max-pass-rate: Input should be less than or equal to 1"),
        (["--min-pass-rate", "0.9", "--max-pass-rate", "0.1"], "--min-pass-rate 0.9 is above --max-pass-rate 0.1"),
    ):
        result = runner.invoke(app, ["train", "--dataset", str(build), "--model", "m", *flags])
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output

    from cotforge.train.data import TrainDataError, load_pairs

    assert len(load_pairs(str(build), quality=QualityFilter(max_pass_rate=0.3))) == 5
    with pytest.raises(TrainDataError, match="need a build directory"):
        load_pairs(str(tmp_path / "x" / "t-g2-cot.jsonl"), quality=QualityFilter(dedup=True))


def test_a_majority_build_moves_outvoted_answers_to_the_rejections_and_writes_the_signals(
    tmp_path: Path, scripted
) -> None:
    from cotforge.builders.build import run_build
    from cotforge.recipes.sources import load_sources

    def build(recipe, out: Path):  # type: ignore[no-untyped-def]
        return run_build(recipe, load_sources(recipe, sample=False), out)

    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(3)])
    recipe = scripted_recipe(problems, scripted.url, keep="majority", sampling={"n": 3, "max_tokens": 64})
    first = build(recipe, tmp_path / "out")
    assert first.accepted == 9 and first.rejected == {}
    # The scripted teacher answers every sample alike: make one sample of a question say something else.
    with sqlite3.connect(tmp_path / "out" / "store.sqlite") as db:
        (key,) = db.execute("SELECT key FROM answers WHERE kind = 'record' ORDER BY key LIMIT 1").fetchone()
        db.execute(
            "UPDATE answers SET payload = json_set(payload, '$.predicted_answer', '7', '$.correct', json('false')) "
            "WHERE key = ?",
            (key,),
        )
    again = build(recipe, tmp_path / "out")
    assert again.accepted == 8 and again.rejected == {RejectionReason.minority_answer: 1} and again.complete
    directory = BuildDir(tmp_path / "out")
    assert [r.key for r in directory.read_rejections()] == [key]
    stats = json.loads((tmp_path / "out" / "cotforge_stats.json").read_text())
    signals = stats["scripted-g2-cot"]["signals"]
    assert stats["scripted-g2-cot"]["rows"] == 8
    assert signals["questions"] == 3 and signals["multi_answer_questions"] == 3 and signals["answers"] == 9
    assert signals["mean_majority_agreement"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert signals["mean_pass_rate"] == pytest.approx((2 / 3 + 1 + 1) / 3)  # the outvoted answer is still wrong
    assert signals["near_duplicates"] == 6  # every question's rationale is the same: q1's and q2's repeat q0's


def test_the_card_of_the_paper_import_shows_the_signals_per_level(paper_build: Path) -> None:
    directory = BuildDir(paper_build)
    stats = corpus_stats(directory.read_subsets(), directory.read_rejections())
    card = render_card("me/svamp", list(stats.values()))
    table = card.split("| subset | questions (n > 1) | pass rate")[1].split("\n\n")[0]
    levels = [line for line in table.splitlines() if line.startswith("| `gpt-4o-g")]
    assert len(levels) >= 6  # gpt-4o at levels 1..6 (and the formats of levels 3 and 5)
    g1 = stats["gpt-4o-g1-cot"].signals
    assert g1 is not None and g1.distinct_sample == min(1000, stats["gpt-4o-g1-cot"].rows)
    assert g1.multi_answer_questions == 0 and g1.mean_pass_rate is None  # the release has one answer per question
    assert f"| `gpt-4o-g1-cot` | {g1.questions:,} (0) | n/a | n/a | n/a |" in card
    assert all(0 < d <= 1 for d in g1.distinct_n) and g1.words["p10"] <= g1.words["p50"] <= g1.words["p90"]
    saved = directory.read_stats()  # the import wrote the same statistics beside its subsets
    assert saved is not None and saved["gpt-4o-g1-cot"]["signals"] == g1.model_dump(mode="json")
