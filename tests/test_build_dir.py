"""A build directory belongs to one recipe, and a damaged store is named, refused and salvaged, never lost."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cotforge.builders.outdir import check_build_dir
from cotforge.builders.salvage import salvage
from cotforge.builders.store import Store, StoreError
from cotforge.cli import app
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.recipes.identity import extend_recipe, recipe_digest
from cotforge.recipes.loader import RecipeError
from cotforge.schemas.tables import write_parquet

from .helpers import recipe_yaml, scripted_recipe, write_problems
from .test_build import all_rows, build

runner = CliRunner()


def test_identity_ignores_transport_but_not_what_is_asked(tmp_path: Path) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    base = scripted_recipe(problems, "http://127.0.0.1:1/v1")
    faster = scripted_recipe(problems, "http://127.0.0.1:1/v1", teacher={"max_concurrency": 2, "timeout_s": 9})
    other = scripted_recipe(problems, "http://127.0.0.1:1/v1", granularities=[5])
    assert recipe_digest(base) == recipe_digest(faster)
    assert recipe_digest(base) != recipe_digest(other)
    merged = extend_recipe(base, other)
    assert merged.granularities == [2, 5]
    with pytest.raises(RecipeError, match="sampling"):
        extend_recipe(base, scripted_recipe(problems, "http://127.0.0.1:1/v1", sampling={"temperature": 0.1}))


def test_another_recipe_is_refused_and_extend_keeps_both(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(4)])
    out = tmp_path / "out"
    first = scripted_recipe(problems, scripted.url, granularities=[1])
    second = scripted_recipe(problems, scripted.url, granularities=[5])
    build(first, out)
    with pytest.raises(BuildDirError, match=r"another recipe \(granularities: \[1\] -> \[5\]\).*--extend"):
        check_build_dir(out, second)
    assert sorted(BuildDir(out).read_subsets()) == ["scripted-g1-cot"], "the refused recipe changed nothing"
    merged = check_build_dir(out, second, extend=True)
    report = build(merged, out, extend=True)
    assert sorted(report.subsets) == ["scripted-g1-cot", "scripted-g5-cot"] and report.accepted == 8
    assert len(scripted.answered()) == 8, "the first recipe's answers were not asked again"


def test_flag_builds_get_their_own_default_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for level in ("1", "5"):
        result = runner.invoke(app, ["build", "-d", "svamp", "-t", "gpt-4o", "-g", level, "--sample", "--dry-run"])
        assert result.exit_code == 0, result.output
    # A dry run writes nothing; the names differ because the recipes differ.
    assert not (tmp_path / "builds").exists()
    from cotforge.recipes import resolve_recipe

    names = {
        recipe_digest(
            resolve_recipe(
                None, {"sources": ["svamp"], "teachers": ["gpt-4o"], "granularities": [g], "teacher_options": None}
            )
        )
        for g in (1, 5)
    }
    assert len(names) == 2


def test_cli_refuses_a_directory_of_another_recipe(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(3)])
    out = tmp_path / "out"
    build(scripted_recipe(problems, scripted.url, granularities=[1]), out)
    other = recipe_yaml(tmp_path / "r.yaml", scripted_recipe(problems, scripted.url, granularities=[3]))
    result = runner.invoke(app, ["build", "--recipe", str(other), "--out", str(out)])
    assert result.exit_code == 2 and "another recipe" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["build", "--recipe", str(other), "--out", str(out), "--extend"])
    assert result.exit_code == 0, result.output
    assert sorted(BuildDir(out).read_subsets()) == ["scripted-g1-cot", "scripted-g3-cot"]


def test_out_that_is_a_file_or_unwritable_is_refused_before_any_request(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    recipe = recipe_yaml(tmp_path / "r.yaml", scripted_recipe(problems, scripted.url))
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = runner.invoke(app, ["build", "--recipe", str(recipe), "--out", str(afile)])
    assert result.exit_code == 2 and "is a file" in result.output
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "subsets").write_text("a file where the subsets folder goes")
    result = runner.invoke(app, ["build", "--recipe", str(recipe), "--out", str(blocked)])
    assert result.exit_code == 2 and "cannot write the build here" in result.output
    assert scripted.log == [], "nothing was paid for"


def _finished_build(tmp_path: Path, scripted, count: int = 6) -> Path:
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(count)])
    out = tmp_path / "out"
    build(scripted_recipe(problems, scripted.url), out)
    return out


def test_garbled_store_is_named_and_salvaged_from_the_outputs(tmp_path: Path, scripted) -> None:
    out = _finished_build(tmp_path, scripted)
    (out / "store.sqlite").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{out / 'store.sqlite'}{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match=r"store\.sqlite.*cotforge salvage"):
        Store(out / "store.sqlite")
    result = runner.invoke(app, ["salvage", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 more from the Parquet outputs" in result.output
    assert list(out.glob("store.damaged-*.sqlite")), "the damaged file is kept"
    sent = len(scripted.log)
    assert build(scripted_recipe(tmp_path / "p.jsonl", scripted.url), out).accepted == 6
    assert len(scripted.log) == sent, "nothing salvaged is asked for again"


def test_a_malformed_row_is_named_and_salvage_keeps_the_others(tmp_path: Path, scripted) -> None:
    out = _finished_build(tmp_path, scripted)
    with Store(out / "store.sqlite") as store:
        damaged_key = next(store.stored_keys())
        store.db.execute("UPDATE answers SET payload = '{\"broken' WHERE key = ?", (damaged_key,))
    (out / "build_report.json").unlink()  # the outputs then hold nothing to recover that row from
    for part in (out / "subsets").iterdir():
        part.unlink()
    with Store(out / "store.sqlite") as store, pytest.raises(StoreError, match=damaged_key):
        list(store.rows())
    report = salvage(out)
    assert report.from_store == 5 and report.unreadable == {"damaged answer": 1}
    assert len(all_rows(out)) == 5
    again = build(scripted_recipe(tmp_path / "p.jsonl", scripted.url), out)
    assert again.accepted == 6 and len(scripted.answered()) == 7, "only the damaged answer is asked again"


def test_salvage_reads_the_store_in_a_folder_whose_name_holds_uri_characters(tmp_path: Path, scripted) -> None:
    """The damaged store is opened through an SQLite URI: a '#' or '?' in the folder's name is part of the path,
    not a fragment or a query that would open another file and lose every stored answer."""
    odd = tmp_path / "runs #1?"
    odd.mkdir()
    out = _finished_build(odd, scripted)
    (out / "build_report.json").unlink()  # the outputs then hold nothing: every row must come from the store
    for part in (out / "subsets").iterdir():
        part.unlink()
    report = salvage(out)
    assert report.from_store == 6 and report.unreadable == {}
    assert len(all_rows(out)) == 6


def test_a_store_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE answers (id INTEGER, body TEXT)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="another layout"):
        Store(path)


def test_an_empty_store_beside_finished_outputs_is_not_a_new_build(tmp_path: Path, scripted) -> None:
    out = _finished_build(tmp_path, scripted)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out / 'store.sqlite'}{suffix}").unlink(missing_ok=True)
    (out / "store.sqlite").write_bytes(b"")
    recipe = scripted_recipe(tmp_path / "p.jsonl", scripted.url)
    with pytest.raises(BuildDirError, match=r"is empty.*cotforge salvage"):
        build(recipe, out)
    sent = len(scripted.log)
    salvage(out)
    assert build(recipe, out).accepted == 6 and len(scripted.log) == sent


def test_a_truncated_store_is_salvaged(tmp_path: Path, scripted) -> None:
    out = _finished_build(tmp_path, scripted, count=200)
    with Store(out / "store.sqlite") as store:
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = out / "store.sqlite"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = salvage(out)
    recovered = report.from_store + report.from_outputs
    assert recovered == 200, report
    assert BuildDir(out).read_report() is not None


def test_each_prompt_is_stored_once_and_joined_back(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(4)])
    out = tmp_path / "out"
    report = build(scripted_recipe(problems, scripted.url, sampling={"n": 3}), out)
    assert report.accepted == 12
    with Store(out / "store.sqlite") as store:
        assert store.db.execute("SELECT count(*) FROM prompts").fetchone()[0] == 4, (
            "one chat per prompt, not per answer"
        )
        payloads = [p for (p,) in store.db.execute("SELECT payload FROM answers")]
        assert all("messages_sent" not in json.loads(p) for p in payloads)
        rows = list(store.rows())
    sent = {json.dumps(json.loads(entry.chat), sort_keys=True) for entry in scripted.log}
    joined = {json.dumps([m.model_dump() for m in r.messages_sent], sort_keys=True) for r in rows}
    assert len(joined) == 4 and joined == sent, "each record carries the chat its teacher was sent"
    parquet = [r for rows in BuildDir(out).read_subsets().values() for r in rows]
    assert sorted(r.model_dump_json() for r in parquet) == sorted(r.model_dump_json() for r in rows)


def test_a_store_of_the_first_layout_is_upgraded_and_resumes(tmp_path: Path, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", [f"q{i} answer=5" for i in range(5)])
    recipe = scripted_recipe(problems, scripted.url)
    out = tmp_path / "out"
    build(recipe, out)
    rows = all_rows(out)
    # The first layout: the chat inside every payload, no prompts table, no dataset or prompt_id column.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out / 'store.sqlite'}{suffix}").unlink(missing_ok=True)
    db = sqlite3.connect(out / "store.sqlite")
    db.execute(
        "CREATE TABLE answers (key TEXT PRIMARY KEY, kind TEXT NOT NULL, subset TEXT NOT NULL, "
        "payload TEXT NOT NULL, stored_at REAL NOT NULL)"
    )
    derived = {"prompt", "completion", "messages"}
    db.executemany(
        "INSERT INTO answers VALUES (?, 'record', ?, ?, 0)",
        [(r.key, r.subset, r.model_dump_json(exclude=derived)) for r in rows[:4]],
    )
    db.commit()
    db.close()
    sent = len(scripted.log)
    again = build(recipe, out)
    assert again.accepted == 5 and len(scripted.log) == sent + 1, "only the answer missing from the old store"
    upgraded = {r.key: r for r in all_rows(out)}
    assert all(upgraded[r.key] == r for r in rows[:4]), "old rows read as they were, chat included"


def test_the_export_holds_a_row_group_not_the_corpus(tmp_path: Path, scripted) -> None:
    """The export streams the store's rows into Parquet row groups: its peak memory does not grow with the rows."""
    problems = write_problems(tmp_path / "p.jsonl", ["q answer=5"])
    build(scripted_recipe(problems, scripted.url), tmp_path / "one")
    (record,) = all_rows(tmp_path / "one")

    def export_peak(count: int) -> int:
        with Store(tmp_path / f"store-{count}.sqlite") as store:
            store.put_all(record.model_copy(update={"key": f"k{i}", "rationale": f"{i} " * 200}) for i in range(count))
            tracemalloc.start()
            try:
                rows = store.records(record.dataset, record.subset)
                assert write_parquet(tmp_path / f"{count}.parquet", rows, row_group_size=100) == count
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    small, large = export_peak(300), export_peak(3000)
    assert large < 1.5 * small, f"export peak grew with the corpus: {small:,} B for 300 rows, {large:,} B for 3000"
    assert pl.read_parquet(tmp_path / "3000.parquet")["key"].n_unique() == 3000


def test_the_built_in_recipes_keep_their_default_build_folders() -> None:
    """A field added to Recipe must not move every existing build's default folder (builds/<name>-<digest>): a build
    run again without --out would start afresh and pay for every answer again. Digests as of 2026-11."""
    from cotforge.recipes import load_recipe

    before = {"aqua": "78855329", "csqa": "a4a03127", "demo": "1ff09730", "gsm8k": "384f5fcf"}
    assert {name: recipe_digest(load_recipe(name)) for name in before} == before


def test_statistics_made_again_from_the_records_keep_what_score_and_judge_added(tmp_path: Path) -> None:
    # A resumed build's export (and a push) computes the statistics again: the scores and judge means of other
    # commands, which the records do not give, are kept; a plain write replaces the file.
    from cotforge.dataset_cards.stats import saved_added_figures

    directory = BuildDir(tmp_path)
    judged = {"faithful": {"mean": 4.5, "judged": 2, "rejected": 0}}
    directory.write_stats({"a": {"records": 1, "judge": judged, "suitability": []}, "b": {"records": 2}})
    directory.write_stats({"a": {"records": 3, "judge": None, "suitability": []}, "b": {"records": 4}}, keep_added=True)
    assert directory.read_stats() == {"a": {"records": 3, "judge": judged, "suitability": []}, "b": {"records": 4}}
    assert saved_added_figures(directory)["a"]["judge"]["faithful"].mean == 4.5
    directory.write_stats({"a": {"records": 5}})
    assert directory.read_stats() == {"a": {"records": 5}}
    directory.write_stats({"a": {"records": 1, "judge": {"faithful": {"mean": "high", "judged": 1, "rejected": 0}}}})
    with pytest.raises(BuildDirError, match="added figures cannot be read"):
        saved_added_figures(directory)
