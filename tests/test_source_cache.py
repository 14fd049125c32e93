"""A resume whose sources have not changed reads no row: what the checking pass found and the plan's keys are kept
in the build directory, under stamps that change with the file and with anything that changes the keys."""

from __future__ import annotations

import json
import os
import shutil
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
    kept = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    with monkeypatch.context() as patched:
        _no_rows(patched)
        warned_again: list[str] = []
        plan = plan_build(recipe, out, warn=warned_again.append)
        assert warned_again == warned and "row 7" in warned[0], "rows left out are told as on the first run"
        assert plan.summary() == estimate and estimate.prompt_tokens > 0
        again = plan.run().report
    assert (again.accepted, again.pending, again.requested) == (78, 0, 78)
    assert len(scripted.answered()) == asked, "nothing asked again"
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == kept, "and nothing written again"


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


# ---- issue 36: a cache that lies can only cost a resume its speed, never make it wrong ----------------------------


def _entry(out: Path, kind: str) -> Path:
    (found,) = BuildDir(out).cache_dir.glob(f"{kind}-*.npz")
    return found


def _forge(entry: Path, verified: bool, **arrays: np.ndarray) -> None:
    """Replace arrays of a cache entry: by hand (np.savez, as a user or a script would), or through SourceCache
    itself, so that the entry carries a check that verifies and only its counts can give it away."""
    kind, key = entry.stem.split("-", 1)
    cache = SourceCache(entry.parent)
    if verified:
        cache.write(kind, key, cache.read(kind, key) | arrays)
    else:
        with np.load(entry) as old:
            np.savez(entry, **{name: old[name] for name in old.files} | arrays)


def _built(tmp_path: Path, scripted, count: int = 20):
    """A finished build of `count` problems in tmp_path/first, and its recipe."""
    recipe = scripted_recipe(_source(tmp_path / "p.jsonl", count), scripted.url)
    plan = plan_build(recipe, tmp_path / "first")
    plan.summary()  # kept as the estimate entry
    plan.run()
    return recipe, tmp_path / "first"


def _no_plan_digests(out: Path, verified: bool) -> None:
    _forge(_entry(out, "plan"), verified, digests=np.empty(0, "S16"))


def _half_the_digests(out: Path, verified: bool) -> None:
    entry = _entry(out, "plan")
    with np.load(entry) as kept:
        _forge(entry, verified, digests=kept["digests"][::2])


def _skip_every_row(out: Path, verified: bool) -> None:
    _entry(out, "plan").unlink()  # the plan is made again from the rows the source entry lets through
    _forge(_entry(out, "source"), verified, skip=np.arange(20, dtype=np.int64))


@pytest.mark.parametrize("verified", [False, True], ids=["by-hand", "check-recomputed"])
@pytest.mark.parametrize("lie", [_no_plan_digests, _half_the_digests, _skip_every_row])
def test_a_cache_that_lies_cannot_make_a_new_build_complete_unasked(tmp_path: Path, scripted, lie, verified) -> None:
    """Issue 36: an entry with no plan digests, or a source entry that skips every row, copied into a new build
    directory (same sources, same recipe): the build said complete, exit 0, and asked nothing; half the digests
    counted progress past 100% and ended in a traceback."""
    recipe, first = _built(tmp_path, scripted)
    out = tmp_path / "second"
    shutil.copytree(BuildDir(first).cache_dir, BuildDir(out).cache_dir)
    lie(out, verified)
    asked = len(scripted.answered())
    seen: list = []
    report = plan_build(recipe, out).run(progress=seen.append).report
    assert (report.accepted, report.pending, report.requested) == (20, 0, 20)
    assert len(scripted.answered()) == asked + 20, "every answer is asked in the new directory"
    assert seen[-1].done == seen[-1].total == 20


def test_a_source_edited_without_changing_its_size_or_time_is_read_again(tmp_path: Path, scripted) -> None:
    """Issue 36: the same size and modification time, another content: the old plan was trusted, the build said
    complete and the changed problem was never asked."""
    recipe, out = _built(tmp_path, scripted)
    problems = Path(recipe.sources[0].path)
    stat = problems.stat()
    problems.write_text(problems.read_text().replace('"q3 answer=5", "answer": "5"', '"q3 answer=6", "answer": "6"'))
    os.utime(problems, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert problems.stat().st_size == stat.st_size
    asked = len(scripted.answered())
    report = plan_build(recipe, out).run().report
    assert (report.pending, report.last_run.stored, len(scripted.answered())) == (0, 1, asked + 1)


@pytest.mark.parametrize("verified", [False, True], ids=["by-hand", "check-recomputed"])
def test_foreign_digests_in_the_plan_are_not_trusted(tmp_path: Path, scripted, verified) -> None:
    """Issue 36: foreign digests in a finished build's plan entry said "pending, run the same command" forever and
    asked nothing."""
    recipe, out = _built(tmp_path, scripted)
    entry = _entry(out, "plan")
    foreign = np.sort(np.array([bytes([200, i]) * 8 for i in range(20)], "S16"))
    _forge(entry, verified, digests=foreign)
    asked = len(scripted.answered())
    report = plan_build(recipe, out).run().report
    assert (report.accepted, report.pending, report.requested) == (20, 0, 20)
    assert len(scripted.answered()) == asked, "nothing is asked again"
    assert plan_build(recipe, out).run().report.pending == 0, "and the entry is made again"


@pytest.mark.parametrize("verified", [False, True], ids=["by-hand", "check-recomputed"])
@pytest.mark.parametrize(
    "tokens", [np.zeros(5, np.int64), np.zeros((1, 2), np.int64), np.array([["a", "b", "c"]])], ids=str
)
def test_an_estimate_entry_of_the_wrong_shape_is_made_again(tmp_path: Path, scripted, tokens, verified) -> None:
    """Issue 36: an estimate entry of another shape was a traceback on every build and dry run."""
    recipe, out = _built(tmp_path, scripted)
    estimate = plan_build(recipe, tmp_path / "elsewhere").summary()
    _forge(_entry(out, "estimate"), verified, tokens=tokens)
    plan = plan_build(recipe, out)
    assert plan.summary() == estimate
    assert plan.run().report.pending == 0


def test_a_file_named_cache_costs_the_resume_its_speed_alone(tmp_path: Path, scripted) -> None:
    """Issue 36: `cache` a file in the build directory was a traceback on every build and dry run."""
    problems = _source(tmp_path / "p.jsonl", 10)
    recipe = scripted_recipe(problems, scripted.url)
    out = tmp_path / "out"
    out.mkdir()
    BuildDir(out).cache_dir.write_text("not a folder")
    for _ in range(2):
        plan = plan_build(recipe, out)
        assert plan.summary().answers == 10
        assert plan.run().report.pending == 0
    assert len(scripted.answered()) == 10 and BuildDir(out).cache_dir.read_text() == "not a folder"


def test_only_a_regular_file_is_read_for_its_digest(tmp_path: Path, monkeypatch) -> None:
    """/dev/zero as a source: its digest would read forever; file_batches refuses it as before."""
    from cotforge.recipes.sources import SourceError, load_problems
    from cotforge.schemas import SourceSpec

    def endless(path: Path) -> str:
        raise AssertionError(f"{path} was read for its digest")

    monkeypatch.setattr(loading, "file_digest", endless)
    with pytest.raises(SourceError, match="no such file"):
        load_problems(SourceSpec(path="/dev/zero", answer_type="number"), cache=SourceCache(tmp_path / "cache"))
