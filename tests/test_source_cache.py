"""A resume whose sources have not changed reads no row: what the checking pass found and the plan's keys are kept
in the build directory, under stamps that change with the file and with anything that changes the keys."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cotforge.api import plan_build
from cotforge.builders.plan import plan_stamp
from cotforge.corpus import BuildDir
from cotforge.recipes.sources import load_sources, loading
from cotforge.recipes.sources.checked import SourceCache

from .helpers import scripted_recipe


def _source(path: Path, count: int, bad_row: int | None = None) -> Path:
    rows = [{"question": f"q{i} answer=5", "answer": "5"} for i in range(count)]
    lines = [json.dumps(row) for row in rows]
    if bad_row is not None:
        lines[bad_row] = json.dumps({"question": "no gold here"})
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _no_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, size: int | None = None) -> None:
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr(loading, "file_batches", refuse)


def test_a_resume_of_unchanged_sources_reads_no_row(tmp_path: Path, scripted, monkeypatch) -> None:
    problems = _source(tmp_path / "p.jsonl", 40, bad_row=7)
    recipe = scripted_recipe(problems, scripted.url, granularities=[1, 2])
    out = tmp_path / "out"
    warned: list[str] = []
    dry = plan_build(recipe, out, warn=warned.append)
    estimate = dry.summary()  # as `cotforge build` prints it before it runs, and --dry-run alone
    assert not out.exists(), "a plan writes nothing"
    first = dry.run().report
    assert (first.accepted, first.pending) == (78, 0)
    cache = BuildDir(out).cache_dir
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["estimate", "plan", "source"]

    asked = len(scripted.answered())
    with monkeypatch.context() as patched:
        _no_rows(patched)
        warned_again: list[str] = []
        plan = plan_build(recipe, out, warn=warned_again.append)
        assert warned_again == warned and "row 7" in warned[0], "rows left out are told as on the first run"
        assert plan.summary() == estimate and estimate.prompt_tokens > 0
        again = plan.run().report
    assert (again.accepted, again.pending, again.requested) == (78, 0, 78)
    assert len(scripted.answered()) == asked, "nothing asked again"


def test_a_changed_source_is_read_again_and_its_new_problems_asked(tmp_path: Path, scripted) -> None:
    problems = _source(tmp_path / "p.jsonl", 30)
    recipe = scripted_recipe(problems, scripted.url)
    out = tmp_path / "out"
    plan_build(recipe, out).run()
    stale = {p.name for p in BuildDir(out).cache_dir.iterdir()}
    _source(problems, 32)  # two more problems; the size and modification time change
    report = plan_build(recipe, out).run().report
    assert (report.accepted, report.last_run.stored) == (32, 2)
    now = {p.name for p in BuildDir(out).cache_dir.iterdir()}
    assert len(now) == 2 and not now & stale, "the stale entries are removed"


def test_a_price_set_on_resume_prices_the_kept_estimate(tmp_path: Path, scripted) -> None:
    problems = _source(tmp_path / "p.jsonl", 10)
    out = tmp_path / "out"
    plan = plan_build(scripted_recipe(problems, scripted.url), out)
    unpriced = plan.summary()
    plan.run()
    priced = scripted_recipe(
        problems, scripted.url, teacher={"input_price_per_mtok": 1.0, "output_price_per_mtok": 2.0}
    )
    again = plan_build(priced, out).summary()
    assert unpriced.cost_usd is None and again.prompt_tokens == unpriced.prompt_tokens
    expected = (again.prompt_tokens * 1.0 + again.completion_tokens * 2.0) / 1e6
    assert again.cost_usd == pytest.approx(expected)


def test_the_same_size_and_a_new_modification_time_is_another_state(tmp_path: Path, scripted) -> None:
    problems = _source(tmp_path / "p.jsonl", 20)
    recipe = scripted_recipe(problems, scripted.url)
    out = tmp_path / "out"
    plan_build(recipe, out).run()
    text = problems.read_text().replace("q3 answer=5", "q9 answer=5")  # q9 twice: merged, so one problem less
    problems.write_text(text)
    stat = problems.stat()
    os.utime(problems, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    plan = plan_build(recipe, out)
    assert plan.sources[0].count == 19 and plan.sources[0].merged == 1


def test_a_damaged_entry_is_read_as_missing(tmp_path: Path, scripted) -> None:
    problems = _source(tmp_path / "p.jsonl", 20)
    recipe = scripted_recipe(problems, scripted.url)
    out = tmp_path / "out"
    plan_build(recipe, out).run()
    for entry in BuildDir(out).cache_dir.iterdir():
        entry.write_bytes(entry.read_bytes()[:40])  # cut short, as a full disk would leave it
    asked = len(scripted.answered())
    report = plan_build(recipe, out).run().report
    assert (report.accepted, report.pending, len(scripted.answered())) == (20, 0, asked)


def test_unsorted_digests_are_not_trusted(tmp_path: Path) -> None:
    from cotforge.builders.keyset import KeySet

    digests = np.array([bytes([i]) * 16 for i in (3, 1, 2)], "S16")
    assert KeySet.of_sorted(digests) is None
    assert KeySet.of_sorted(np.sort(digests)) is not None
    assert KeySet.of_sorted(np.array([1, 2, 3])) is None


def test_the_plan_stamp_changes_with_what_makes_keys(tmp_path: Path, scripted) -> None:
    problems = _source(tmp_path / "p.jsonl", 5)
    recipe = scripted_recipe(problems, scripted.url)
    sources = load_sources(recipe)
    base = plan_stamp(recipe, sources)
    assert base is not None and base == plan_stamp(recipe, load_sources(recipe))
    for changes in ({"granularities": [3]}, {"sampling": {"n": 2}}, {"prompt_mode": "gold_hinted"}):
        other = scripted_recipe(problems, scripted.url, **changes)
        assert plan_stamp(other, load_sources(other)) != base, changes
    moved = scripted_recipe(problems, scripted.url, teacher={"timeout_s": 9.0})  # transport: the same keys
    assert plan_stamp(moved, load_sources(moved)) == base
    builtin = scripted_recipe(problems, scripted.url, sources=[{"dataset": "svamp"}])
    assert plan_stamp(builtin, load_sources(builtin, sample=True)) is None, "the built-in samples are not kept"


def test_keep_only_removes_the_rest(tmp_path: Path) -> None:
    cache = SourceCache(tmp_path / "cache")
    for key in ("a", "b"):
        cache.write("source", key, {"x": np.arange(3)})
    cache.keep_only({("source", "b")})
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["source-b.npz"]
    assert cache.read("source", "a") is None and cache.read("source", "b")["x"].tolist() == [0, 1, 2]


def test_a_hub_split_is_known_by_its_fingerprint(tmp_path: Path) -> None:
    import polars as pl

    from cotforge.recipes.sources import load_problems
    from cotforge.schemas import SourceSpec

    folder = tmp_path / "hub-dataset" / "data"
    folder.mkdir(parents=True)
    rows = [{"question": f"q{i}", "answer": i} for i in range(12)]
    pl.DataFrame(rows).write_parquet(folder / "train-00000-of-00001.parquet")
    spec = SourceSpec(hub_id=str(folder.parent), answer_type="number")
    cache = SourceCache(tmp_path / "cache")
    first = load_problems(spec, cache=cache)
    assert first.stamp is not None and first.stamp == load_problems(spec).stamp
    assert load_problems(spec, limit=3).stamp != first.stamp, "the limit is part of the state"
    cache.write("source", first.stamp, first.selection.arrays())
    again = load_problems(spec, cache=cache)
    assert (again.count, again.selection.count, [p.id for p in again]) == (12, 12, [p.id for p in first])
    pl.DataFrame(rows[:5]).write_parquet(folder / "train-00000-of-00001.parquet")  # the data set changes
    assert load_problems(spec, cache=cache).count == 5
