"""What a content digest in a source's stamp costs a resume: one read of the file, hashed.

    python benchmarks/source_digest.py [--problems 1000000]

Writes a `.jsonl` source of `--problems` rows as build_scale.py does (1M: 57 MB), then times, best of three in CPU
seconds (a shared machine's load changes wall seconds most), a plain read of the file in the same chunks (the
baseline: what any digest pays at least) and each digest over it: SHA-256 and BLAKE2b from the standard library, and
xxHash's XXH3-128 where `xxhash` is installed (a dependency of `datasets`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class _Discard:
    """A 'digest' that reads and keeps nothing: the cost of the read alone."""

    def update(self, data: bytes) -> None:
        pass


def best_seconds(path: Path, make: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        with path.open("rb") as handle:
            hashlib.file_digest(handle, make)
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=1_000_000)
    args = parser.parse_args()
    digests: dict[str, Callable[[], Any]] = {
        "read only": _Discard,
        "sha256": hashlib.sha256,
        "blake2b-128": lambda: hashlib.blake2b(digest_size=16),
    }
    try:
        import xxhash

        digests["xxh3-128"] = xxhash.xxh3_128
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "problems.jsonl"
        with source.open("w") as handle:
            for i in range(args.problems):
                handle.write(json.dumps({"question": f"n{args.problems} q{i} answer=5", "answer": "5"}) + "\n")
        size = source.stat().st_size
        print(f"{args.problems:,} problems, {size / 1e6:.1f} MB")
        baseline = best_seconds(source, digests.pop("read only"))
        print(f"{'read only':>12}: {baseline:.3f} s of CPU")
        for name, make in digests.items():
            seconds = best_seconds(source, make)
            speed = f"{size / seconds / 1e6:,.0f} MB/s, {seconds / baseline:.1f}x the read"
            print(f"{name:>12}: {seconds:.3f} s of CPU, {speed}")


if __name__ == "__main__":
    main()
