"""A real reasoning teacher end to end: DeepSeek-R1-Distill-Qwen-7B (Q4_K_M GGUF from its PyPI part packages) on
llama.cpp's OpenAI-compatible server answers SVAMP questions in the native arm.

llama-cpp-python 0.3.36's server has no reasoning parser (no `reasoning_content` field), so this tests the inline
path: this GGUF's chat template ends the prompt at `<｜Assistant｜>`, so the reply holds `<think>…</think>` and then
the answer (the inline shape). On a 2-core CPU one question takes minutes (BENCHMARKS.md), so the test runs only with
COTFORGE_R1_TEST=1, and skips, saying why, where the parts do not make the whole model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cotforge.schemas import CoTRecord, Recipe

from .local_teacher import R1_ALIAS, llama_server, r1_distill_gguf
from .test_build import build

pytestmark = [pytest.mark.integration, pytest.mark.slow]
QUESTIONS = 2


def test_r1_distill_answers_svamp_natively(tmp_path: Path) -> None:
    if os.environ.get("COTFORGE_R1_TEST") != "1":
        pytest.skip("minutes per question on a CPU: set COTFORGE_R1_TEST=1 to run it")
    gguf = r1_distill_gguf()
    with llama_server(gguf, n_ctx=4096, alias=R1_ALIAS, options=("--n_threads", "2")) as url:
        recipe = Recipe.model_validate(
            {
                "sources": [{"dataset": "svamp"}],
                "teachers": [{"model": R1_ALIAS, "base_url": url, "timeout_s": 3600, "max_concurrency": 1}],
                "granularities": [0],
                "native": True,
                "limit": QUESTIONS,
                "sampling": {"temperature": 0.6, "max_tokens": 3000},
            }
        )
        report = build(recipe, tmp_path / "out")
    assert report.requested == report.accepted + sum(report.rejected.values()) + report.failed + report.pending
    assert report.failed == 0 and report.pending == 0
    native = tmp_path / "out" / "subsets" / f"{R1_ALIAS}-native-cot.parquet"
    from cotforge.schemas.tables import read_parquet

    records = read_parquet(native, CoTRecord)
    assert records, f"no native record: {report.rejected}"
    for record in records:
        # The trace is kept apart, the answer is read after it, and neither holds the other's tags.
        assert record.reasoning and len(record.reasoning.split()) > 20
        assert "</think>" not in record.rationale and "<think>" not in (record.reasoning or "")
        assert record.rationale.rstrip().splitlines()[-1] == f"The answer is {record.predicted_answer}"
