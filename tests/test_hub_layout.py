"""The Hub repo's layout (cotforge.corpus.HubLayout): what a push writes, and the judge's and scorer's tables that
travel with push and pull, against the local Hub of test_hub.py."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from cotforge.corpus import BuildDir, HubLayout
from cotforge.hub import HubError
from cotforge.hub_pull import PulledCorpus, save_pulled
from cotforge.quality.rsr import RecordScore, ScoredBy
from cotforge.quality.scores import ScoreStore
from cotforge.schemas.judge import JudgeRejection, JudgeScore

from .helpers import scripted_recipe, write_problems
from .test_build import build
from .test_hub import cotforge, hub, hub_env, small_build  # noqa: F401  (hub, small_build: test_hub's fixtures)

# ruff: noqa: F811  (the fixtures, imported above, are the tests' parameters)

pytestmark = pytest.mark.integration
STUDENT = ScoredBy(student="tiny", weights_digest="w1", template="chat", reasoning="keep", max_length=512)


def judge_and_score(build_dir: Path) -> None:
    """A verdict for every record (score = its sample index + 1), one malformed verdict, and a suitability score
    for every record: the files `cotforge judge` and `cotforge score` leave."""
    directory = BuildDir(build_dir)
    records = [(name, r) for name, rows in directory.read_subsets().items() for r in rows]
    outcome = {"rubric": "faithful", "rubric_version": "v1", "judge_model": "judge"}
    scores = [
        JudgeScore(key=r.key, subset=name, score=r.sample_index + 1, reason="ok", **outcome) for name, r in records
    ]
    name, first = records[0]
    directory.write_judgements(scores, [JudgeRejection(key=first.key, subset=name, why="not JSON", **outcome)])
    store = ScoreStore(directory)
    score = RecordScore(tokens=10, mean_surprisal=1.5, mean_rank=2.0, rsr=0.75)
    store.add(STUDENT, {r.key: (name, score) for name, r in records})
    store.merge()


def table(data: bytes) -> list[tuple[str, str]]:
    """(subset, key) of a by-subset table's rows, sorted."""
    import io

    return sorted(pl.read_parquet(io.BytesIO(data)).select("subset", "key").iter_rows())


def local_rows(build_dir: Path, name: str, subsets: set[str]) -> list[tuple[str, str]]:
    return [row for row in table((build_dir / name).read_bytes()) if row[0] in subsets]


def test_every_pushed_file_is_one_the_layout_declares(tmp_path: Path, hub, small_build: Path) -> None:
    judge_and_score(small_build)
    assert cotforge(hub_env(hub, tmp_path), "push", str(small_build), "me/cot", "--rejected").returncode == 0
    files = set(hub.files("me/cot"))
    declared = {HubLayout.card, HubLayout.plot, HubLayout.stats, HubLayout.licence, *HubLayout.copied}
    declared |= set(HubLayout.by_subset)
    subsets = ["scripted-g1-cot", "scripted-g4-cot", HubLayout.rejected]
    shards = {HubLayout.shard(name, "train", 0, 1) for name in subsets}
    assert files - {".gitattributes"} == declared | shards


def test_judge_and_scorer_tables_travel_with_push_and_pull(tmp_path: Path, hub, small_build: Path) -> None:
    judge_and_score(small_build)
    env = hub_env(hub, tmp_path)
    assert cotforge(env, "push", str(small_build), "me/cot").returncode == 0
    files = hub.files("me/cot")
    everything = {"scripted-g1-cot", "scripted-g4-cot"}
    for name in HubLayout.by_subset:
        assert table(files[name]) == local_rows(small_build, name, everything), name
    again = cotforge(env, "push", str(small_build), "me/cot")
    assert again.returncode == 0 and "no new commit" in again.stdout, "the tables are written the same each time"

    pulled = cotforge(env, "pull", "me/cot", "--subset", "scripted-g1-cot", "--out", str(tmp_path / "one"))
    assert pulled.returncode == 0, pulled.stderr
    one = BuildDir(tmp_path / "one")
    for name in HubLayout.by_subset:  # only the pulled subset's rows
        assert table((one.path / name).read_bytes()) == local_rows(small_build, name, {"scripted-g1-cot"}), name
    verdicts = one.read_judge_scores()
    assert {v.key: v.score for v in verdicts} == {r.key: r.sample_index + 1 for r in one.read_records()}
    scores = [v.score for v in verdicts]  # the means a pull's statistics, made from the records, would lack
    rejected = len(one.read_judge_rejections())
    faithful = {"mean": round(sum(scores) / len(scores), 3), "judged": len(scores), "rejected": rejected}
    assert one.read_stats()["scripted-g1-cot"]["judge"] == {"faithful": faithful}
    assert set(ScoreStore(one).read(STUDENT)) == {r.key for r in one.read_records()}
    assert f"{HubLayout.by_subset[0]}: {len(verdicts)} rows of the subsets pulled" in pulled.stdout


def test_a_push_replaces_the_rows_of_its_subsets_and_keeps_the_others(tmp_path: Path, hub, scripted) -> None:
    problems = write_problems(tmp_path / "p.jsonl", ["a answer=5", "b answer=5"])
    for name, level in (("two", 2), ("six", 6)):
        build(scripted_recipe(problems, scripted.url, granularities=[level]), tmp_path / name)
        judge_and_score(tmp_path / name)
    env = hub_env(hub, tmp_path)
    for name in ("two", "six"):
        assert cotforge(env, "push", str(tmp_path / name), "me/grid").returncode == 0
    scores = HubLayout.by_subset[0]
    assert {subset for subset, _ in table(hub.files("me/grid")[scores])} == {"scripted-g2-cot", "scripted-g6-cot"}
    for name in HubLayout.by_subset:  # level 2 built again, never judged nor scored: its old rows go
        (tmp_path / "two" / name).unlink()
    assert cotforge(env, "push", str(tmp_path / "two"), "me/grid").returncode == 0
    assert table(hub.files("me/grid")[scores]) == local_rows(tmp_path / "six", scores, {"scripted-g6-cot"})
    for name in HubLayout.by_subset:
        (tmp_path / "six" / name).unlink()
    assert cotforge(env, "push", str(tmp_path / "six"), "me/grid").returncode == 0
    assert not set(HubLayout.by_subset) & set(hub.files("me/grid")), "a table with no row left is deleted"


def test_a_damaged_table_is_refused_before_anything_is_sent(tmp_path: Path, hub, small_build: Path) -> None:
    judge_and_score(small_build)
    (small_build / HubLayout.by_subset[0]).write_bytes(b"PAR1 not really")
    result = cotforge(hub_env(hub, tmp_path), "push", str(small_build), "me/cot")
    assert result.returncode == 2 and f"{HubLayout.by_subset[0]}: not a readable Parquet file" in result.stderr
    assert "Traceback" not in result.stderr and ("dataset", "me/cot") not in hub.repos


def test_a_pulled_judge_table_with_rows_that_are_no_verdicts_is_a_sentence(tmp_path: Path) -> None:
    """The table has its subset column (what the download checks), but its rows are no JudgeScore: the pull is
    refused with the file's name, and the folder is left as it was."""
    rows = pl.DataFrame({"subset": ["a"], "key": ["k"]})
    out = tmp_path / "out"
    with pytest.raises(HubError, match=r"^pull of me/cot: judge_scores.parquet: not a judge scores file") as raised:
        save_pulled(PulledCorpus({}, {"judge_scores.parquet": rows}), out, "pull of me/cot")
    assert raised.value.usage and "partial" not in str(raised.value)
    assert not BuildDir(out).judge_scores_path.exists()
