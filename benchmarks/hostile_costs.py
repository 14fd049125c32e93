"""Small hostile inputs with large costs (issue 36), run by a baseline checkout and by this one side by side.

    python benchmarks/hostile_costs.py --baseline /path/to/main [--rationale-mb 10] [--answer-mb 0.3] [--configs 1001]

Three cases, each in its own process (wall seconds and peak resident memory from wait4), each against a local Hub
on 127.0.0.1 (tests/hub_server.py) or in memory:
- long-rationale: `cotforge pull` of a repo holding one record whose rationale is --rationale-mb MB (the pull's
  statistics and quality signals read it);
- long-answers: the quality signals of a subset holding two --answer-mb MB answers to one question (their
  pairwise similarity);
- configs: `cotforge pull` of a repo whose card lists --configs configs, all of one Parquet file.
Printed: seconds, peak GB and exit code per checkout, and the baseline's seconds / this checkout's.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import made_record, records_parquet, repo_card  # noqa: E402
from tests.hub_server import LocalHub  # noqa: E402

OFFLINE = "import datasets; datasets.config.USE_PARQUET_EXPORT = False\n"
PULL = OFFLINE + "import sys; from cotforge.entry import main; sys.argv = ['cotforge', *sys.argv[1:]]; main()"
SIGNALS = """
import sys
from cotforge.quality.signals import AnswerRow, subset_signals
text = open(sys.argv[1], encoding="utf-8").read()
rows = [AnswerRow("q1", f"k{i}", True, "5", f"{text} {i}", 0, 1, False) for i in range(2)]
print(subset_signals(rows).mean_pairwise_similarity)
"""


def words(chars: int, seed: int) -> str:
    """About `chars` characters of words drawn from 5,000 (text that neither repeats nor compresses to nothing)."""
    pick = random.Random(seed).choice
    vocabulary = [f"w{i}" for i in range(5_000)]
    out, size = [], 0
    while size < chars:
        word = pick(vocabulary)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return time.monotonic() - started, usage.ru_maxrss * 1024 / 1e9, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", required=True, help="another checkout of cotforge (its repository root)")
    parser.add_argument("--rationale-mb", type=float, default=10.0)
    parser.add_argument("--answer-mb", type=float, default=0.3)
    parser.add_argument("--configs", type=int, default=1001)
    parser.add_argument("--only", choices=("long-rationale", "long-answers", "configs"))
    args = parser.parse_args()
    hub = LocalHub().start()
    try:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
            folder = Path(tmp)
            long_record = made_record("q1", "k1", "5", words(int(args.rationale_mb * 1e6), 1) + "\nThe answer is 5")
            subset = [{"split": "train", "path": "data/t/train-00000-of-00001.parquet"}]
            one = [{"config_name": "t", "data_files": subset}]
            hub.put("me/long", {"README.md": repo_card(one), subset[0]["path"]: records_parquet([long_record])})
            many = [{"config_name": f"c{i}", "data_files": subset} for i in range(args.configs)]
            short = records_parquet([made_record("q1", "k1", "5", "We add.\nThe answer is 5")])
            hub.put("me/configs", {"README.md": repo_card(many), subset[0]["path"]: short})
            answer = folder / "answer.txt"
            answer.write_text(words(int(args.answer_mb * 1e6), 2), encoding="utf-8")
            cases = {
                "long-rationale": lambda out: [sys.executable, "-c", PULL, "pull", "me/long", "--out", str(out)],
                "long-answers": lambda out: [sys.executable, "-c", SIGNALS, str(answer)],
                "configs": lambda out: [sys.executable, "-c", PULL, "pull", "me/configs", "--out", str(out)],
            }
            print(f"{'case':>15} {'checkout':>10} {'s':>7} {'peak GB':>8} {'exit':>5} {'x faster':>8}", flush=True)
            for name, command in cases.items():
                if args.only and name != args.only:
                    continue
                seconds = {}
                for label, checkout in (("baseline", args.baseline), ("this", str(ROOT))):
                    env = {
                        **os.environ,
                        "PYTHONPATH": checkout,
                        "HF_ENDPOINT": hub.url,
                        "HF_HUB_DISABLE_XET": "1",
                        "HF_HOME": str(folder / f"hf-{name}-{label}"),
                        "HF_HUB_DISABLE_TELEMETRY": "1",
                    }
                    os.chdir(folder)  # not a checkout: `python -c` imports the package of PYTHONPATH
                    seconds[label], peak, code = timed(command(folder / f"out-{name}-{label}"), env)
                    ratio = f"{seconds['baseline'] / seconds[label]:>8.1f}" if label == "this" else ""
                    print(f"{name:>15} {label:>10} {seconds[label]:>7.1f} {peak:>8.2f} {code:>5} {ratio}", flush=True)
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
