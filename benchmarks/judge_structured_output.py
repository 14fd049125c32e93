"""How many of a weak judge's verdicts are valid, by how the verdict's schema is sent: SmolLM2-135M-Instruct on
llama-cpp-python's server judging hand-made SVAMP-style records on faithful and level, the schema as
response_format (json_object with the schema: a grammar) against the schema in the prompt alone (the baseline), in
the same run on the same records.

    nice python3 benchmarks/judge_structured_output.py [--records 10] [--max-tokens 96]

The scores themselves are noise at 135M; what is measured is the share of replies that validate into the rubric's
verdict model (a whole score in range and a reason), the rest being kept as judge rejections.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cotforge.corpus import BuildDir  # noqa: E402
from cotforge.dataset_cards.stats import write_finished  # noqa: E402
from cotforge.judging import judge_build  # noqa: E402
from cotforge.schemas.recipe import JudgeSpec  # noqa: E402
from tests.helpers import made_record  # noqa: E402
from tests.local_teacher import gguf_or_exit, llama_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    gguf = gguf_or_exit()
    pairs = [(a, b) for a in range(1, 9) for b in range(1, 9)][: args.records]
    records = [
        made_record(f"{a}+{b}", f"k{a}-{b}", str(a + b), f"{a}+{b}={a + b}\nThe answer is {a + b}", level=1 + i % 6)
        for i, (a, b) in enumerate(pairs)
    ]
    valid = {}
    with tempfile.TemporaryDirectory() as folder, llama_server(gguf) as url:
        for mode in ("prompt", "json_object"):
            build = BuildDir(Path(folder) / mode)
            write_finished(build, "hand-made", records, [])
            teacher = {"model": "smollm2-135m-instruct", "base_url": url, "max_retries": 1}
            spec = JudgeSpec(
                teacher=teacher, rubrics=["faithful", "level"], structured_output=mode, max_tokens=args.max_tokens
            )
            started = time.monotonic()
            report = judge_build(build.path, spec)
            asked = report.scored + report.rejected
            valid[mode] = report.scored / asked
            rejected = Counter(line.split(": ", 1)[1].split(" (")[0] for line in report.first_rejections)
            print(
                f"{mode:>11}: {report.scored}/{asked} verdicts valid, {report.rejected} rejected "
                f"(first: {dict(rejected)}), {report.completion_tokens} completion tokens, "
                f"{time.monotonic() - started:.0f} s"
            )
    print(
        f"valid share, schema as response_format / in the prompt alone: {valid['json_object']:.2f} / "
        f"{valid['prompt']:.2f}"
    )


if __name__ == "__main__":
    main()
