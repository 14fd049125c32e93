"""Dataset cards: per-subset statistics, the length-by-level plot, and the README.md a Hub dataset shows."""

from cotforge.dataset_cards.card import render_card
from cotforge.dataset_cards.stats import StatsTally, SubsetStats, corpus_stats, subset_stats, write_finished

__all__ = ["StatsTally", "SubsetStats", "corpus_stats", "render_card", "subset_stats", "write_finished"]
