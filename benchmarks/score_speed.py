"""What `cotforge score` costs: one subset scored under a student (seconds, tokens/s, the process's peak memory), the
re-run that finds everything scored, and in the same run a plain baseline on a sample of the records: the whole
[batch x length x vocabulary] logits from the model's own forward, then the same surprisal and rank from them.

    python benchmarks/score_speed.py --build paper --subset gpt-4o-g3-cot --student path/to/smollm2.gguf

Each way runs in a fresh process on a fresh copy of the subset (so nothing is scored yet), same batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

OURS = """
import json, resource, sys, time
import cotforge
from cotforge.corpus import BuildDir
from cotforge.dataset_cards.stats import write_finished
build, subset, student, batch, out = sys.argv[1:6]
write_finished(BuildDir(out), "copy", BuildDir(build).read_subsets([subset])[subset], [])
started, cpu = time.perf_counter(), time.process_time()
report = cotforge.score(out, student, batch_size=int(batch))
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
again, again_cpu = time.perf_counter(), time.process_time()
rerun = cotforge.score(out, student, batch_size=int(batch))
cpu -= time.process_time() - again_cpu  # a re-run loads the student and scores nothing: what scoring alone costs
print(json.dumps({"seconds": seconds, "cpu_s": cpu, "scoring_s": report.wall_time_s, "records": report.scored,
    "tokens": report.tokens, "rerun_s": time.perf_counter() - again, "rerun_scored": rerun.scored,
    "rsr": report.subsets[subset].rsr, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PLAIN = """
import json, resource, sys, time
import torch
from cotforge.corpus import BuildDir
from cotforge.train.batching import collate_padded
from cotforge.train.config import split_gguf_path
from cotforge.train.data import IGNORE, fitted, render, resolve_template
from cotforge.train.student import load_student, load_tokenizer
build, subset, student, batch, limit = sys.argv[1:6]
records = BuildDir(build).read_subsets([subset])[subset][: int(limit)]
model_name, gguf_file = split_gguf_path(student, None)
tokenizer = load_tokenizer(model_name, gguf_file)
template = resolve_template(tokenizer, "auto")
model = load_student(model_name, gguf_file, torch.device("cpu")).eval()
examples = [fitted(*render(tokenizer, template, r.prompt, r.rationale), 1024) for r in records]
examples.sort(key=lambda e: -len(e.input_ids))
started, cpu, tokens = time.perf_counter(), time.process_time(), 0
with torch.no_grad():
    for start in range(0, len(examples), int(batch)):
        b = collate_padded(examples[start : start + int(batch)], tokenizer.pad_token_id)
        logits = model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits[:, :-1].float()
        targets = b.labels[:, 1:]
        chosen = logits.gather(2, targets.clamp(min=0)[..., None])
        surprisal = (logits.logsumexp(-1) - chosen[..., 0])[targets != IGNORE]
        rank = ((logits > chosen).sum(-1) + 1).clamp(max=100)[targets != IGNORE]
        tokens += len(surprisal)
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_s": cpu, "records": len(examples), "tokens": tokens,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--subset", required=True)
    parser.add_argument("--student", required=True)
    parser.add_argument("--batch-size", default="16")
    parser.add_argument("--baseline-records", default="96", help="records the plain baseline scores (0: none)")
    args = parser.parse_args()
    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as out:
        ours = _run(OURS, args.build, args.subset, args.student, args.batch_size, out)
    speed = ours["tokens"] / ours["scoring_s"]
    print(
        f"cotforge score: {ours['records']} records, {ours['tokens']:,} completion tokens in {ours['scoring_s']:.1f} s "
        f"of scoring ({ours['seconds']:.1f} s with loading the student; scoring {ours['cpu_s']:.0f} CPU s), "
        f"{speed:,.0f} tokens/s ({ours['tokens'] / ours['cpu_s']:,.0f} per CPU s), peak "
        f"{ours['peak_mb']:,.0f} MB, RSR {ours['rsr']:.3f}; re-run {ours['rerun_s']:.1f} s, "
        f"{ours['rerun_scored']} scored again"
    )
    if args.baseline_records != "0":
        plain = _run(PLAIN, args.build, args.subset, args.student, args.batch_size, args.baseline_records)
        plain_speed = plain["tokens"] / plain["seconds"]
        print(
            f"plain full logits: {plain['records']} records, {plain['tokens']:,} tokens in {plain['seconds']:.1f} s "
            f"({plain['cpu_s']:.0f} CPU s), {plain_speed:,.0f} tokens/s, peak {plain['peak_mb']:,.0f} MB"
        )
        per_cpu = (ours["tokens"] / ours["cpu_s"]) / (plain["tokens"] / plain["cpu_s"])
        print(
            f"ours/plain: tokens per second {speed / plain_speed:.2f}x, per CPU second {per_cpu:.2f}x, peak memory "
            f"{ours['peak_mb'] / plain['peak_mb']:.2f}x"
        )
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
