"""Check that the installed llama-cpp-python is the portable build scripts/setup-test-servers.sh makes.

A build tuned for the machine that compiled it (llama.cpp's default, -march=native) can hold AMX tile or AVX-512
instructions that crash with "Illegal instruction" elsewhere, or on the same cloud Xeon under virtualisation. Two
checks: llama.cpp's own feature banner (what it was compiled for) and, where binutils is installed, the CPU
library's machine code itself (no `tileloadd`, AMX's tile load; no zmm register, AVX-512's).

Exit 0: portable. Exit 1: missing, another version, or not portable (what was found is printed).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

FORBIDDEN_FEATURES = ("AMX", "AVX512")
FORBIDDEN_INSTRUCTIONS = {"tileloadd": "AMX", "%zmm": "AVX-512"}


def banner() -> str:
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode()


def cpu_libraries() -> list[Path]:
    import llama_cpp

    return sorted(Path(llama_cpp.__file__).parent.glob("lib/libggml-cpu*.so*"))


def instruction_findings(library: Path) -> list[str]:
    """The forbidden instructions in a library's disassembly, each named once."""
    found: set[str] = set()
    with subprocess.Popen(
        ["objdump", "-d", "--no-show-raw-insn", str(library)], stdout=subprocess.PIPE, text=True
    ) as p:
        assert p.stdout is not None
        for line in p.stdout:
            found |= {f"{name} ({kind})" for name, kind in FORBIDDEN_INSTRUCTIONS.items() if name in line}
    return sorted(found)


def problems(version: str | None, quick: bool) -> list[str]:
    try:
        installed = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return ["llama-cpp-python is not installed"]
    if version and installed != version:
        return [f"llama-cpp-python {installed} is installed, {version} is wanted"]
    found = [f"its banner shows {name}" for name in FORBIDDEN_FEATURES if name in banner()]
    if quick or found:
        return found
    libraries = cpu_libraries()
    if not libraries:
        return ["no libggml-cpu library found beside llama_cpp"]
    if shutil.which("objdump") is None:
        print("objdump not found (binutils): the machine code was not inspected, only the banner")
        return []
    return [f"{library.name} holds {what}" for library in libraries for what in instruction_findings(library)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="the llama-cpp-python version wanted")
    parser.add_argument("--quiet", action="store_true", help="banner only, print nothing: for a quick pre-check")
    args = parser.parse_args()
    found = problems(args.version, quick=args.quiet)
    if not args.quiet:
        if found:
            print("llama-cpp-python is NOT a portable build: " + "; ".join(found), file=sys.stderr)
        else:
            print(f"llama-cpp-python portable build checked: {banner().strip()}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
