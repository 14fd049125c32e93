"""`cotforge score`: each completion token's surprisal and rank under a student, the Rank-Surprisal Ratio per record
and per subset, kept beside the build and resumed without scoring anything twice."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.corpus import BuildDir
from cotforge.dataset_cards.stats import SubsetStats, write_finished
from cotforge.quality.rsr import RANK_CLIP, ScoredBy, record_score, subset_suitability
from cotforge.suitability import score_build
from cotforge.suitability.tokens import score_batch, surprisal_and_rank
from cotforge.train.batching import collate_padded
from cotforge.train.data import IGNORE, Example, fitted, render

from .helpers import made_record

pytestmark = pytest.mark.integration


def test_surprisal_and_rank_of_hand_computed_logits(monkeypatch) -> None:
    """With an identity output layer the hidden states are the logits: a 3-token vocabulary worked by hand, ties,
    and the clip at 100; one row per chunk, so the chunking is crossed too."""
    monkeypatch.setattr("cotforge.train.loss.CHUNK_ELEMENTS", 3)
    hidden = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 3.0, 3.0]])
    targets = torch.tensor([0, 2, 1, 0])
    surprisal, rank = surprisal_and_rank(hidden, torch.eye(3), targets)
    log_norm = math.log(math.e**2 + math.e + 1)  # logsumexp(2, 1, 0)
    expected = [log_norm - 2, log_norm - 0, math.log(2 * math.e + 1) - 1, math.log(1 + 2 * math.e**3)]
    assert surprisal.tolist() == pytest.approx(expected, abs=1e-6)
    assert rank.tolist() == [1, 3, 1, 3]  # a tie is not "strictly higher": 1 + 0 for the third row
    wide = torch.arange(150, dtype=torch.float32)[None]  # the lowest logit of 150: rank 150, clipped
    assert surprisal_and_rank(wide, torch.eye(150), torch.tensor([0]))[1].tolist() == [RANK_CLIP]


def test_a_subsets_ratio_is_the_ratio_of_the_means_not_the_mean_of_the_ratios() -> None:
    first, second = record_score(2, 2.0, 4.0), record_score(4, 12.0, 16.0)  # means: (1, 2) and (3, 4)
    assert (first.mean_surprisal, first.mean_rank, first.rsr) == (1.0, 2.0, 2.0)
    assert second.rsr == pytest.approx(16 / 12)
    scored_by = ScoredBy(student="s", weights_digest="d", template="chat", reasoning="drop", max_length=64)
    subset = subset_suitability(scored_by, [first, second], not_scored=1)
    assert (subset.mean_surprisal, subset.mean_rank, subset.rsr) == (2.0, 3.0, 1.5)  # not (2 + 4/3) / 2
    assert (subset.records, subset.tokens, subset.not_scored) == (2, 6, 1)
    empty = subset_suitability(scored_by, [], not_scored=3)
    assert (empty.records, empty.rsr) == (0, None)


def _model(student: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(student), AutoModelForCausalLM.from_pretrained(student).eval()


def _examples(tokenizer, n: int) -> list[Example]:
    pairs = [(f"What is {i} + {i * 7}?", f"{i} plus {i * 7} is {i * 8}. " * (1 + i % 4)) for i in range(n)]
    return [fitted(*render(tokenizer, "chat", prompt, completion), 512) for prompt, completion in pairs]


UNCLIPPED = 10**9  # a random tiny model ranks nearly every token past 100: unclipped, the ranks tell rows apart


def test_only_completion_tokens_are_scored_as_the_full_logits_say(student: Path, monkeypatch) -> None:
    """Against a plain reference (every logit of the sequence): the completion's tokens, each with its surprisal
    and rank; no prompt token counts."""
    monkeypatch.setattr("cotforge.suitability.tokens.RANK_CLIP", UNCLIPPED)
    tokenizer, model = _model(student)
    example = _examples(tokenizer, 3)[2]
    [sums] = score_batch(model, collate_padded([example], tokenizer.pad_token_id), torch.float32)
    prompt_length = example.labels.count(IGNORE)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([example.input_ids])).logits[0, prompt_length - 1 : -1]
    targets = torch.tensor(example.input_ids[prompt_length:])
    chosen = logits.gather(1, targets[:, None])
    assert sums.tokens == len(targets) == len(example.input_ids) - prompt_length
    assert sums.surprisal == pytest.approx(float((logits.logsumexp(-1) - chosen[:, 0]).sum()), rel=1e-5)
    assert sums.rank == pytest.approx(float(((logits > chosen).sum(-1) + 1).sum()), rel=1e-5)


def test_padding_and_batching_do_not_change_a_records_score(student: Path, monkeypatch) -> None:
    monkeypatch.setattr("cotforge.suitability.tokens.RANK_CLIP", UNCLIPPED)
    tokenizer, model = _model(student)
    examples = _examples(tokenizer, 6)
    together = score_batch(model, collate_padded(examples, tokenizer.pad_token_id), torch.float32)
    for example, in_batch in zip(examples, together, strict=True):
        [alone] = score_batch(model, collate_padded([example], tokenizer.pad_token_id), torch.float32)
        assert alone.tokens == in_batch.tokens
        assert alone.surprisal == pytest.approx(in_batch.surprisal, rel=1e-4)
        assert alone.rank == pytest.approx(in_batch.rank, rel=1e-5)


def _toy_build(folder: Path) -> BuildDir:
    """Eight records in two subsets (levels 2 and 3), with their statistics, as an import writes them."""
    records = [
        made_record(f"{i} + {i}", f"k{level}-{i}", "5", f"add {i} and {i} " * (i + 1), level=level)
        for level in (2, 3)
        for i in range(4)
    ]
    write_finished(BuildDir(folder), "toy", records, [])
    return BuildDir(folder)


def _rows(directory: BuildDir) -> pl.DataFrame:
    return pl.read_parquet(directory.scores_path)


def test_a_rerun_scores_nothing_twice_and_a_killed_run_keeps_its_batches(
    tmp_path: Path, student: Path, monkeypatch
) -> None:
    directory = _toy_build(tmp_path / "build")
    seen: list[int] = []

    def stop_after_the_first_batch(now) -> None:
        seen.append(now.done)
        if now.done and not now.finished:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_build(directory, str(student), batch_size=3, progress=stop_after_the_first_batch)
    assert len(_rows(directory)) == 3, "the batch scored before the kill is kept (merged from its part)"
    assert not list(directory.score_parts_dir.glob("part-*"))
    report = score_build(directory, str(student), batch_size=3)
    assert (report.scored, report.reused) == (5, 3)
    rows = _rows(directory)
    assert len(rows) == 8 and rows["key"].n_unique() == 8

    def no_forward(*args, **kwargs):
        raise AssertionError("a re-run scored a record again")

    monkeypatch.setattr("cotforge.suitability.run.score_batch", no_forward)
    again = score_build(directory, str(student), subsets=["t-g2-cot"])
    assert (again.scored, again.reused, list(again.subsets)) == (0, 4, ["t-g2-cot"])
    assert _rows(directory).equals(rows)
    stats = SubsetStats.model_validate(directory.read_stats()["t-g3-cot"])
    [entry] = stats.suitability
    assert entry.scored_by == report.scored_by and entry.records == 4
    mine = rows.filter(pl.col("subset") == "t-g3-cot")
    assert entry.rsr == pytest.approx(mine["mean_rank"].mean() / mine["mean_surprisal"].mean())
    assert entry.tokens == mine["tokens"].sum() and stats.rows == 4, "the other statistics stay"


def test_parts_a_killed_run_could_not_merge_are_read_and_merged_by_the_next(
    tmp_path: Path, student: Path, monkeypatch
) -> None:
    """SIGKILL runs no `finally`: the batches' part files are all that is left, and they are enough."""
    from cotforge.quality.scores import ScoreStore

    directory = _toy_build(tmp_path / "build")
    merge = ScoreStore.merge
    monkeypatch.setattr(ScoreStore, "merge", lambda self: None)

    def killed_after_two_batches(now) -> None:
        if now.done == 4:
            raise SystemExit(137)

    with pytest.raises(SystemExit):
        score_build(directory, str(student), batch_size=2, progress=killed_after_two_batches)
    assert len(list(directory.score_parts_dir.glob("part-*.parquet"))) == 2 and not directory.scores_path.exists()
    monkeypatch.setattr(ScoreStore, "merge", merge)
    report = score_build(directory, str(student), batch_size=2)
    assert (report.scored, report.reused) == (4, 4)
    assert len(_rows(directory)) == 8 and not list(directory.score_parts_dir.glob("part-*.parquet"))


def test_the_viewer_shows_each_subsets_scores(tmp_path: Path, student: Path) -> None:
    from cotforge.view.pages import overview
    from cotforge.view.store import open_reader

    directory = _toy_build(tmp_path / "build")
    report = score_build(directory, str(student))
    stats = directory.read_stats()
    stats["t-g3-cot"]["suitability"].append({"scored_by": "damaged"})  # left out, not an error page
    directory.write_stats(stats)
    page = overview(open_reader(directory.path), live=False)
    fit = report.subsets["t-g2-cot"]
    assert "<h2>Suitability" in page and page.count(report.scored_by.weights_digest) >= 2
    assert f"{fit.rsr:.3f}" in page


def test_other_weights_under_the_same_name_are_scored_anew(tmp_path: Path, student: Path) -> None:
    from .students import tiny_llama

    directory = _toy_build(tmp_path / "build")
    first = tmp_path / "a" / "student"
    shutil.copytree(student, first)
    tokenizer, _ = _model(student)
    second = tiny_llama(tmp_path / "b" / "student", tokenizer, seed=1)
    one = score_build(directory, str(first))
    two = score_build(directory, str(second))
    assert one.scored_by.student == two.scored_by.student == "student"
    assert one.scored_by.weights_digest != two.scored_by.weights_digest
    assert (two.scored, two.reused) == (8, 0)
    assert len(_rows(directory)) == 16
    assert len(SubsetStats.model_validate(directory.read_stats()["t-g2-cot"]).suitability) == 2
    plain = score_build(directory, str(first), template="plain")  # another rendering is another score
    assert (plain.scored, plain.reused) == (8, 0)
    assert score_build(directory, str(first)).reused == 8


def test_a_prompt_that_fills_max_length_is_not_scored(tmp_path: Path, student: Path) -> None:
    directory = _toy_build(tmp_path / "build")
    directory.stats_path.unlink()  # a build made before its statistics were kept: they are made first
    report = score_build(directory, str(student), max_length=24)  # the chat prompt alone is longer
    assert report.scored == 0 and report.not_scored == 8
    assert all(s.records == 0 and s.not_scored == 4 and s.rsr is None for s in report.subsets.values())
    stats = {name: SubsetStats.model_validate(value) for name, value in directory.read_stats().items()}
    assert {name: (s.rows, s.suitability[0].not_scored) for name, s in stats.items()} == {
        "t-g2-cot": (4, 4),
        "t-g3-cot": (4, 4),
    }


def test_the_command_prints_each_subset_and_refuses_bad_input(tmp_path: Path, student: Path) -> None:
    directory = _toy_build(tmp_path / "build")
    runner = CliRunner()
    result = runner.invoke(app, ["score", str(directory.path), "--student", str(student), "--subset", "t-g3-cot"])
    assert result.exit_code == 0, result.output
    assert "t-g3-cot" in result.output and "t-g2-cot" not in result.output
    assert "scored 4 records (0 already scored)" in result.output
    missing = runner.invoke(app, ["score", str(directory.path), "--student", str(student), "--subset", "nope"])
    assert missing.exit_code == 2 and "no subset nope" in missing.output
    not_a_build = runner.invoke(app, ["score", str(tmp_path), "--student", str(student)])
    assert not_a_build.exit_code == 2 and "not a build directory" in not_a_build.output
    no_student = runner.invoke(app, ["score", str(directory.path), "--student", str(tmp_path / "none")])
    assert no_student.exit_code == 2 and "no such folder" in no_student.output


def test_a_hub_corpus_is_pulled_once_and_scored_in_its_copy(tmp_path: Path, student: Path) -> None:
    from .hub_server import LocalHub
    from .test_hub import TOKEN, cotforge, hub_env

    directory = _toy_build(tmp_path / "build")
    hub = LocalHub(token=TOKEN).start()
    try:
        env = {**hub_env(hub, tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
        pushed = cotforge(env, "push", str(directory.path), "me/cot", "--no-check")
        assert pushed.returncode == 0, pushed.stderr
        first = cotforge(env, "score", "me/cot", "--student", str(student))
        assert first.returncode == 0, first.stderr
        pulled = BuildDir(tmp_path / "cache" / "cotforge" / "score" / "me--cot")
        assert len(_rows(pulled)) == 8
        again = cotforge(env, "score", "me/cot", "--student", str(student))
        assert "scored 0 records (8 already scored)" in again.stdout, "the same copy, not a new pull"
        republished = cotforge(env, "push", str(pulled.path), "me/cot", "--no-check")
        assert republished.returncode == 0, republished.stderr
        files = hub.files("me/cot")
        stats = json.loads(files["cotforge_stats.json"])
        [fit] = stats["t-g2-cot"]["suitability"]  # a push computes the statistics again, the scores kept
        by = fit["scored_by"]
        assert fit["records"] == 4 and by["student"] == student.name.lower()
        assert f"| `t-g2-cot` | {by['student']} (`{by['weights_digest']}`) | 4 |" in files["README.md"].decode()
        missing = cotforge(env, "score", "me/none", "--student", str(student))
        assert missing.returncode == 2 and "me/none" in missing.stderr
    finally:
        hub.stop()


def test_damaged_scores_file_is_named(tmp_path: Path, student: Path) -> None:
    directory = _toy_build(tmp_path / "build")
    directory.scores_path.write_bytes(b"not parquet")
    result = CliRunner().invoke(app, ["score", str(directory.path), "--student", str(student)])
    assert result.exit_code == 2 and "suitability.parquet: not a scores file" in result.output


def test_the_api_function_is_not_hidden_by_the_package() -> None:
    import cotforge.suitability  # a subpackage named `score` would replace the function cotforge.score here

    assert cotforge.score.__module__ == "cotforge.api"
