"""The card's figure: mean rationale length by granularity level, one line per teacher and format (a reasoning
teacher's condensed levels a line of their own), and its native traces as a dashed level line."""

from __future__ import annotations

import io
from collections import defaultdict

from cotforge.dataset_cards.stats import SubsetStats
from cotforge.schemas.recipe import FormatMode


def length_by_level_png(stats: list[SubsetStats]) -> bytes | None:
    """A PNG, or None when no subset has a level or a native trace (nothing to plot)."""
    lines: dict[str, list[tuple[int, float]]] = defaultdict(list)
    native: dict[str, float] = {}
    for s in stats:
        if s.format_mode == FormatMode.native.value:
            native[f"{s.teacher} native trace"] = s.mean_words
        elif s.granularity is not None:
            condensed = " condensed" if s.format_mode == FormatMode.condensed.value else ""
            lines[f"{s.teacher}{condensed} ({s.format})"].append((s.granularity, s.mean_words))
    if not lines and not native:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    for label, points in sorted(lines.items()):
        points.sort()
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    for label, words in sorted(native.items()):
        axes.axhline(words, linestyle="--", linewidth=1, label=label)
    axes.set_xlabel("granularity level")
    axes.set_ylabel("mean rationale length (words)")
    axes.set_xticks(range(0, 7))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    # No software/date metadata: the same statistics give the same bytes, so a re-push changes nothing.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
