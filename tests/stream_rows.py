"""A source whose selection (--limit, merges, conflicts, invalid rows) is pinned against the loader before streaming
(tests/fixtures/stream_selection.json, made by the list-loading load_problems of main at 8784a28)."""

from __future__ import annotations

import json
import random
from pathlib import Path


def selection_rows() -> list[dict]:
    """2,600 rows: repeats of earlier questions (same gold: merged; another gold: a conflict), rows that are not
    valid problems, far apart in the file so that they fall in different batches."""
    rng = random.Random(26)
    rows: list[dict] = []
    for i in range(2600):
        roll = rng.random()
        if roll < 0.05 and i > 10:
            bad = {"question": None, "answer": 1} if rng.random() < 0.5 else {"question": f"x{i}?", "answer": "n/a"}
            rows.append(bad)
        elif roll < 0.15 and i > 10:
            earlier = rng.randrange(i)
            gold = earlier % 97 if rng.random() < 0.7 else earlier % 97 + 1
            rows.append({"question": f"q{earlier}?", "answer": gold})
        else:
            rows.append({"question": f"q{i}?", "answer": i % 97})
    return rows


def write_selection_source(path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in selection_rows()), encoding="utf-8")
    return path
