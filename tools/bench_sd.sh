#!/usr/bin/env bash
# Transparent SDEdit and TTTI-step timings: deda (`deda bench sdedit|ttti-step`, tch) and the
# PyTorch/diffusers reference (tools/bench_sd.py) on the same shapes, full-size SD-1.5 +
# LayerDiffuse architectures with random weights; prints JSON lines side by side.
# Usage: tools/bench_sd.sh [device] [dtype] [size] [batch] [micro_batch]
#        (default: cuda fp16 512 32 8)
# Python: $DEDA_BENCH_PYTHON, else .venv/bin/python, else python3 (needs torch; diffusers and
# transformers from tools/parity/requirements.txt are pip-installed if missing, else the
# reference prints {"status": "reference unavailable"}). After each benchmark a line
# {"peak_gpu_mem": LABEL, "nvidia_smi_mib": N} gives its process's peak GPU memory; the Python
# lines also carry torch.cuda.max_memory_allocated as torch_max_allocated_mib.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f tools/env.sh ] && source tools/env.sh
device="${1:-cuda}"; dtype="${2:-fp16}"; size="${3:-512}"; batch="${4:-32}"; micro="${5:-8}"
cargo build --release -q -p deda-cli
bin="${CARGO_TARGET_DIR:-target}/release/deda"
# Each benchmark runs in its own process under tools/bench_sd_peakmem.sh, which prints the
# process's peak GPU memory (nvidia-smi) the same way for both sides.
peak=tools/bench_sd_peakmem.sh
$peak deda-sdedit "$bin" bench sdedit --device "$device" --dtype "$dtype" --size "$size" --iters 3
$peak deda-ttti-step "$bin" bench ttti-step --device "$device" --dtype "$dtype" --size "$size" \
  --batch "$batch" --micro-batch "$micro" --steps 3
py="${DEDA_BENCH_PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
if ! "$py" -c "import diffusers, transformers" 2>/dev/null; then
  # Everything pinned except torch (keep the machine's CUDA build).
  grep -v -e '^#' -e '^torch==' tools/parity/requirements.txt | xargs "$py" -m pip install -q 2>/dev/null || true
fi
for only in sdedit ttti-step; do
  $peak "diffusers-$only" "$py" tools/bench_sd.py --device "$device" --dtype "$dtype" \
    --size "$size" --batch "$batch" --micro-batch "$micro" --only "$only" || true
done
