"""scripts/gpu-check.sh's budget: the probes' limits fit one GPU-machine command, as its header says. (CI runs the
script itself in --short mode: .ci/run.)"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402


def test_probe_limits_add_up_to_under_nine_minutes_as_the_header_says() -> None:
    total = sum(gpu_check.LIMITS.values())
    assert total < 9 * 60 and set(gpu_check.LIMITS) == set(gpu_check.PROBES) == set(gpu_check.TITLES)
    header = (ROOT / "scripts" / "gpu-check.sh").read_text()
    stated = re.search(rf"a-{max(gpu_check.LIMITS)} at most ([\d+]+) = (\d+) s", header)
    assert stated is not None
    assert [int(x) for x in stated.group(1).split("+")] == list(gpu_check.LIMITS.values())
    assert int(stated.group(2)) == total


def test_the_markdown_table_has_a_row_per_probe_and_keeps_skips() -> None:
    machine = dict.fromkeys(
        ["gpu", "torch", "torch_cuda", "transformers", "peft", "bitsandbytes", "flash-attn", "vllm", "cotforge_commit"]
    )
    report = {
        "short": True,
        "finished": None,
        "machine": machine,
        "probes": {
            "a": {"status": "ok", "seconds": 3.0, "figures": {"packed": {"mfu": None, "tokens_per_s": 12}}},
            "h": {"status": gpu_check.NO_CUDA, "figures": {}},
        },
    }
    table = gpu_check.markdown(report).splitlines()
    assert table[-2].startswith("| a |") and "packed mfu None; tokens_per_s 12" in table[-2]
    assert table[-1].startswith("| h |") and "skipped: no CUDA" in table[-1]
