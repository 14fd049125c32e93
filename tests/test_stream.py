"""Sources read batch by batch and keys held as digests: the same problems, errors and resumes as before."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from cotforge.builders.build import run_build
from cotforge.builders.keyset import KeySet, key_digest
from cotforge.builders.store import Store
from cotforge.recipes.sources import BUILTIN_SOURCES, SourceError, load_problems, load_sources, loading
from cotforge.schemas import AnswerType, SourceSpec

from .helpers import scripted_recipe
from .stream_rows import write_selection_source

FIXTURES = Path(__file__).parent / "fixtures"


def _ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    """Batches of 97 rows: every repeat and conflict of a source of thousands lies batches away from its first."""
    monkeypatch.setattr(loading, "BATCH_ROWS", 97)
    return 97


def test_limit_merges_and_conflicts_select_what_the_list_loader_selected(tmp_path: Path, small_batches: int) -> None:
    expected = json.loads((FIXTURES / "stream_selection.json").read_text())["file"]
    path = write_selection_source(tmp_path / "selection.jsonl")  # the file name makes the ids, as it did then
    for limit, then in expected.items():
        loaded = load_problems(
            SourceSpec(path=str(path), answer_type=AnswerType.number), limit=None if limit == "None" else int(limit)
        )
        ids = [p.id for p in loaded]
        assert (len(ids), loaded.count) == (then["count"], then["count"]), limit
        assert _ids_digest(ids) == then["ids"], f"--limit {limit} selects other problems than before"
        assert [list(row) for row in loaded.invalid] == then["invalid"], limit
        assert loaded.merged == then["merged"], limit


@pytest.mark.parametrize("name", sorted(BUILTIN_SOURCES))
def test_sample_and_limit_give_the_same_problems_as_before(name: str) -> None:
    expected = json.loads((FIXTURES / "stream_selection.json").read_text())["sample"]
    for limit in (None, 5):
        loaded = load_problems(SourceSpec(dataset=name), sample=True, limit=limit)
        assert _ids_digest([p.id for p in loaded]) == expected[f"{name}/{limit}"]["ids"]


def test_a_malformed_line_deep_in_a_large_source_is_named(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    lines = [json.dumps({"question": f"q{i}?", "answer": i}) for i in range(30_000)]
    lines[23_456] = '{"question": "cut short'  # line 23,457 of the file, in its third batch
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"big\.jsonl: line 23457: not valid JSON"):
        load_problems(SourceSpec(path=str(path), answer_type=AnswerType.number))
    lines[23_456] = json.dumps({"question": "q?", "answer": "many"})
    path.write_text("\n".join(lines) + "\n")
    loaded = load_problems(SourceSpec(path=str(path), answer_type=AnswerType.number))
    assert loaded.count == 29_999 and loaded.invalid == [(23_456, "gold 'many' is not a number answer")]


def test_a_question_repeated_in_another_batch_is_caught(tmp_path: Path, small_batches: int) -> None:
    rows = [{"question": f"q{i}?", "answer": i} for i in range(300)]
    rows[250] = {"question": "q3?", "answer": 3}  # batch 3 repeats row 3 of batch 1: merged
    rows[260] = {"question": "q5?", "answer": 6}  # another gold for row 5: both left out
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_problems(SourceSpec(path=str(path), answer_type=AnswerType.number))
    questions = [p.question for p in loaded]
    assert loaded.merged == 1 and questions.count("q3?") == 1
    assert "q5?" not in questions and loaded.count == len(questions) == 297
    why = "conflict: gold '5' in row 5, '6' in row 260"
    assert loaded.invalid == [(5, why), (260, why)]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_columnar_files_are_read_in_batches_with_their_row_numbers(tmp_path: Path, suffix: str) -> None:
    rows = [{"question": f"q{i}?", "answer": str(i)} for i in range(25_000)]
    rows[21_000]["answer"] = "none"
    frame = pl.DataFrame(rows)
    path = tmp_path / f"p{suffix}"
    frame.write_parquet(path, row_group_size=4_000) if suffix == ".parquet" else frame.write_csv(path)
    batches = list(loading.file_batches(path, 10_000))
    assert len(batches) > 1 and sum(len(b) for b in batches) == 25_000
    loaded = load_problems(SourceSpec(path=str(path), answer_type=AnswerType.number), limit=24_000)
    assert loaded.invalid == [(21_000, "gold 'none' is not a number answer")]
    problems = list(loaded)
    assert len(problems) == loaded.count == 24_000 and problems[-1].question == "q24000?"


def test_a_row_that_changes_between_reads_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}?", "answer": i}) + "\n" for i in range(5)))
    loaded = load_problems(SourceSpec(path=str(path), answer_type=AnswerType.number))
    changed = [{"question": f"q{i}?", "answer": "x" if i == 3 else i} for i in range(5)]
    path.write_text("".join(json.dumps(row) + "\n" for row in changed))
    with pytest.raises(SourceError, match="row 3 changed"):
        list(loaded)


def test_keyset_holds_digests_and_answers_membership() -> None:
    keys = [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(250_001)]
    planned = KeySet.of(keys[:200_000])
    assert len(planned) == 200_000 and planned.digests.nbytes == 16 * 200_000
    assert planned.contains([keys[0], keys[199_999], keys[200_000], "imported-key-1"]).tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert keys[5] in planned and keys[250_000] not in planned
    assert planned.within(KeySet.of(keys)) and not KeySet.of(keys).within(planned)
    assert key_digest("imported-key-1") != key_digest("imported-key-2") and len(key_digest("x")) == 16
    assert KeySet.of([]).within(planned) and not planned.within(KeySet.of([]))


def test_keys_that_share_their_first_eight_bytes_are_told_apart() -> None:
    shared = "00112233445566778899aabbccddeeff"
    keys = [shared[:16] + f"{i:016x}" for i in (1, 5, 9)] + [shared, "ffffffffffffffff0000000000000000"]
    found = KeySet.of(keys)
    asked = [shared[:16] + f"{i:016x}" for i in range(11)] + [shared, "ffffffffffffffff0000000000000001"]
    assert found.contains(asked).tolist() == [i in (1, 5, 9) for i in range(11)] + [True, False]
    assert KeySet.of_unique(found.digests[::-1].copy()).contains(keys).all()


def test_a_store_made_before_digests_resumes_without_asking(tmp_path: Path) -> None:
    """A store written by main at 8784a28 (string keys in SQLite, as now): the resume finds every answer."""
    made = json.loads((FIXTURES / "main-store" / "made.json").read_text())
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(row) + "\n" for row in made["rows"]))
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(FIXTURES / "main-store" / "store.sqlite", out / "store.sqlite")
    # The server that answered is gone: any request would fail, and the build would not be complete.
    recipe = scripted_recipe(problems, made["base_url"], granularities=[1], sampling={"n": 2, "max_tokens": 64})
    report = run_build(recipe, load_sources(recipe), out)
    assert (report.accepted, report.pending, report.requested, report.last_run.requests_sent) == (
        made["answers"],
        0,
        made["answers"],
        0,
    )
    with Store(out / "store.sqlite") as store:
        assert store.count() == made["answers"]
