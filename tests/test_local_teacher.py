from __future__ import annotations

from pathlib import Path

import pytest

from cotforge.builders.build import run_build
from cotforge.recipes import apply_overrides, load_recipe
from cotforge.recipes.sources import load_sources
from cotforge.schemas import CoTRecord, Rejection
from cotforge.schemas.tables import read_parquet

from .local_teacher import llama_server, require_local_teacher


@pytest.mark.integration
def test_real_records_from_smollm2_through_the_openai_client(tmp_path: Path) -> None:
    gguf = require_local_teacher()
    with llama_server(gguf) as url:
        recipe = apply_overrides(
            load_recipe("demo"),
            {"limit": 4, "sampling": {"max_tokens": 160}, "teacher_options": {"base_url": url}},
        )
        report = run_build(recipe, load_sources(recipe, sample=True), tmp_path / "out")
    assert report.requested == 8  # 4 SVAMP problems x levels 1 and 5
    assert report.requested == report.accepted + sum(report.rejected.values()) + report.failed
    assert report.failed == 0 and report.completion_tokens > 0
    records = [r for p in (tmp_path / "out" / "subsets").glob("*.parquet") for r in read_parquet(p, CoTRecord)]
    rejections = read_parquet(tmp_path / "out" / "rejections.parquet", Rejection)
    assert len(records) + len(rejections) == 8
    for record in records:
        assert record.rationale.endswith(f"The answer is {record.predicted_answer}")
        assert record.teacher == "smollm2-135m-instruct" and record.usage.completion_tokens > 0
    for rejection in rejections:
        assert rejection.raw_response is not None  # a tiny model's misses are kept with their text
