"""Issue 36, small files with huge costs: the quality signals read a bounded length of each text, and a repo card's
configs are counted before `datasets` reads them. Each test names the failure it covers; none times anything: each
counts the text that reached the costly function, or checks the refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotforge.corpus import BuildDir
from cotforge.dataset_cards import render_card, subset_stats, write_finished
from cotforge.hub_card import MAX_CONFIGS
from cotforge.quality import SIGNAL_CHARS, SIMILARITY_CHARS, duplicates, signals
from cotforge.quality.filters import QualityFilter
from cotforge.quality.signals import AnswerRow, subset_signals

from .helpers import made_record, records_parquet, repo_card


def spy_lengths(monkeypatch: pytest.MonkeyPatch, name: str, *modules: object) -> list[int]:
    """The length of each text the function `name` of the modules is given, as it is called."""
    seen: list[int] = []
    for module in modules:
        real = getattr(module, name)

        def spy(text: str, *args, real=real, **kwargs):
            seen.append(len(text))
            return real(text, *args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return seen


def test_a_huge_rationale_is_read_up_to_the_bound_by_the_signals_and_the_stats_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 21 KB Parquet holding one 30 MB rationale cost 57 s and 7 GB at pull: its MinHash and distinct-n read it all.
    tokenized = spy_lengths(monkeypatch, "tokens", duplicates, signals)  # shingles (MinHash), distinct-n
    huge = "apples and pears " * (SIGNAL_CHARS // 6)  # about three times the bound
    records = [
        made_record("q1", "k1", "5", f"{huge}\nThe answer is 5"),
        made_record("q2", "k2", "5", "We add two and three.\nThe answer is 5"),
    ]
    pulled = BuildDir(tmp_path / "pulled")
    write_finished(pulled, "pull of me/huge", records, [])  # what `cotforge pull` writes
    assert tokenized and max(tokenized) <= SIGNAL_CHARS
    (stats,) = json.loads(pulled.stats_path.read_text()).values()
    assert stats["signals"]["cut_texts"] == 1 and stats["signals"]["cut_at_chars"] == SIGNAL_CHARS
    assert stats["signals"]["words"]["p90"] == len(huge.split()) + 4, "lengths still count every word"
    card = render_card("me/huge", [subset_stats("t-g2-cot", records)])
    assert f"first {SIGNAL_CHARS:,} characters" in card
    assert f"`t-g2-cot`: rationales longer than {SIGNAL_CHARS:,} characters" in card


def test_dedup_reads_a_huge_rationale_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same rationale under `--dedup` (export, train): its MinHash read it all.
    shingled = spy_lengths(monkeypatch, "shingles", duplicates)
    huge = made_record("q1", "k1", "5", "apples and pears " * (SIGNAL_CHARS // 6))
    kept = QualityFilter(dedup=True).subset([huge, made_record("q2", "k2", "5", "We add.")], [])
    assert len(kept) == 2 and shingled and max(shingled) <= SIGNAL_CHARS


def test_two_long_answers_to_one_question_are_compared_on_their_first_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two 2 MB answers to one question stalled the outputs for over 10 minutes: Indel similarity is quadratic.
    compared: list[int] = []
    real = signals.cdist

    def spy(queries, choices, **kwargs):
        compared.extend(len(text) for text in [*queries, *choices])
        return real(queries, choices, **kwargs)

    monkeypatch.setattr(signals, "cdist", spy)
    texts = [f"sample {i}: " + "apples and pears " * (SIMILARITY_CHARS // 6) for i in range(2)]
    rows = [AnswerRow("q1", f"k{i}", True, "5", text, len(text.split()), 1, False) for i, text in enumerate(texts)]
    rows.append(AnswerRow("q2", "k3", True, "5", "short", 1, 1, False))
    found = subset_signals(rows)
    assert compared and max(compared) <= SIMILARITY_CHARS
    assert found.similarity_cut_texts == 2 and found.similarity_cut_at_chars == SIMILARITY_CHARS
    assert found.mean_pairwise_similarity is not None and found.mean_pairwise_similarity > 0.99


@pytest.mark.integration
def test_a_card_listing_more_configs_than_the_bound_is_refused_before_any_is_read(tmp_path: Path) -> None:
    # A card listing 3,000 configs of one file ran `pull` for over 5 minutes at 700 MB: `datasets` resolves every
    # config again for each one it loads.
    from .hub_server import LocalHub
    from .test_hub import cotforge, hub_env

    shard = [{"split": "train", "path": "data/t/train-00000-of-00001.parquet"}]
    configs = [{"config_name": f"c{i}", "data_files": shard} for i in range(MAX_CONFIGS + 1)]
    record = made_record("q1", "k1", "5", "We add.\nThe answer is 5")
    hub = LocalHub().start()
    try:
        hub.put("me/many", {"README.md": repo_card(configs), shard[0]["path"]: records_parquet([record])})
        result = cotforge(hub_env(hub, tmp_path), "pull", "me/many", "--out", str(tmp_path / "pulled"))
        assert result.returncode == 2, result.stderr
        assert f"me/many: README.md lists {MAX_CONFIGS + 1:,} configs" in result.stderr
        assert f"at most {MAX_CONFIGS:,}" in result.stderr and "Traceback" not in result.stderr
        assert not any(".parquet" in path for _, path, _ in hub.requests), "no data file was read"
        assert not (tmp_path / "pulled").exists()
        # The configs of the YAML file beside the card replace the card's (as `datasets` reads them): bound too.
        import yaml

        beside = yaml.safe_dump(json.loads(json.dumps({"configs": configs}))).encode()
        hub.put("me/beside", {"README.md": repo_card(configs[:1]), ".huggingface.yaml": beside})
        result = cotforge(hub_env(hub, tmp_path), "pull", "me/beside", "--out", str(tmp_path / "pulled"))
        assert result.returncode == 2 and f".huggingface.yaml lists {MAX_CONFIGS + 1:,} configs" in result.stderr
    finally:
        hub.stop()


@pytest.mark.integration
def test_a_pull_of_a_huge_rationale_says_the_signals_read_it_up_to_the_bound(tmp_path: Path) -> None:
    # The same rationale pulled from a repo: the command carries on and says which bound it hit.
    from .hub_server import LocalHub
    from .test_hub import cotforge, hub_env

    shard = [{"split": "train", "path": "data/t/train-00000-of-00001.parquet"}]
    huge = made_record("q1", "k1", "5", "apples and pears " * (SIGNAL_CHARS // 6) + "\nThe answer is 5")
    hub = LocalHub().start()
    try:
        hub.put("me/huge", {"README.md": repo_card([{"config_name": "t", "data_files": shard}]),
                            shard[0]["path"]: records_parquet([huge])})  # fmt: skip
        result = cotforge(hub_env(hub, tmp_path), "pull", "me/huge", "--out", str(tmp_path / "pulled"))
    finally:
        hub.stop()
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert f"warning: t-g2-cot: rationales longer than {SIGNAL_CHARS:,} characters" in said and "): 1" in said
    (stats,) = json.loads(BuildDir(tmp_path / "pulled").stats_path.read_text()).values()
    assert stats["signals"]["cut_texts"] == 1
