"""The loss's memory and time: cotforge's chunked output layer + cross-entropy against the plain one (whole logits,
then `cross_entropy`), forward and backward, each in a fresh process, same inputs.

    python benchmarks/loss_memory.py [--tokens 2048] [--hidden 640] [--vocab 262144]

Defaults are Gemma 3 270M's output layer (262k vocabulary, hidden 640) over 2,048 completion tokens, fp32, CPU.
Peak: the process's resident-set peak above what it held before the loss.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

RUN = """
import json, resource, sys, time
import torch, torch.nn.functional as F
from cotforge.train.loss import linear_cross_entropy
way, tokens, hidden, vocab = sys.argv[1], *map(int, sys.argv[2:5])
generator = torch.Generator().manual_seed(0)
h = torch.randn(tokens, hidden, generator=generator).requires_grad_()
w = (torch.randn(vocab, hidden, generator=generator) * 0.02).requires_grad_()
t = torch.randint(0, vocab, (tokens,), generator=generator)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
loss = linear_cross_entropy(h, w, t) if way == "chunked" else F.cross_entropy(h @ w.T, t, reduction="sum")
loss.backward()
seconds = time.perf_counter() - started
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"loss": loss.item(), "seconds": seconds, "peak_mb": peak, "grad": w.grad.abs().sum().item()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=640)
    parser.add_argument("--vocab", type=int, default=262144)
    args = parser.parse_args()
    sizes = [str(args.tokens), str(args.hidden), str(args.vocab)]
    results = {}
    for way in ("plain", "chunked"):
        done = subprocess.run([sys.executable, "-c", RUN, way, *sizes], capture_output=True, text=True, check=True)
        results[way] = json.loads(done.stdout.strip().splitlines()[-1])
    plain, chunked = results["plain"], results["chunked"]
    print(f"{args.tokens} tokens, hidden {args.hidden}, vocabulary {args.vocab}, fp32, CPU, forward + backward")
    for way, r in results.items():
        print(f"{way:<8} {r['seconds']:6.2f} s  peak +{r['peak_mb']:8,.0f} MB  loss {r['loss']:.4f}")
    print(
        f"chunked/plain: time {chunked['seconds'] / plain['seconds']:.2f}x, memory "
        f"{chunked['peak_mb'] / plain['peak_mb']:.2f}x; same loss within "
        f"{abs(chunked['loss'] - plain['loss']) / abs(plain['loss']):.1e} (relative)"
    )


if __name__ == "__main__":
    main()
