#!/usr/bin/env bash
# One GPU-machine session in one go (no cargo there): prebuilt, stripped binaries and the assets
# travel in .device/ (see the comments below); every check prints JSON lines or tables to
# stdout and copies its small outputs to $OUT.
#   .device/deda            the deda binary          .device/bench_combine   loader example
#   .device/bench_sam       deda-sam example         .device/bench_grounding_dino
#   .device/assets/         cutouts + backgrounds (+ their .tsv)
#   .device/efficientnet_lite0.safetensors (optional, for the scarce experiment)
# Build the binaries in RELEASE (`cargo build --release -p deda-cli` and the examples with
# `--release --example ...`), strip them and pack them as .device/bins.tar.xz. The first run
# (results/device-session-2026-11-26.log) used debug builds (our crates at opt-level 1), which
# understates the CPU-side steps such as SAM's 45 ms preprocessing.
set -uo pipefail
cd "$(dirname "$0")/.."
D=.device
OUT="${OUT:-/tmp/device-out}"
mkdir -p "$OUT"
PY=/opt/torch/.venv/bin/python3
[ -x "$PY" ] || PY=python3
export LD_LIBRARY_PATH="$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export PYTHONUNBUFFERED=1
[ -f $D/bins.tar.xz ] && tar -xJf $D/bins.tar.xz -C $D
nvidia-smi -L; nproc; "$PY" -c 'import torch, transformers; print(torch.__version__, transformers.__version__)'
section() { echo; echo "=== $1 ($(date +%T))"; }

for exp in mini-waterbirds scarce; do
  section "experiment $exp (cuda)"
  timeout "${EXP_TIMEOUT:-150}" $D/deda experiment "$exp" --assets $D/assets --out /tmp/exp/$exp \
    --device cuda --threads 8 --pretrained $D/efficientnet_lite0.safetensors ${EXP_RUNS:+--runs $EXP_RUNS} 2>&1 \
    | grep -E "^\||results|error|data:|epoch +[0-9]+ .*" | grep -vE "^epoch +[0-9]+ " | head -40
  (cd /tmp/exp && find "$exp" -maxdepth 1 \( -name 'results.*' -o -name 'data-config.json' \) \
     | xargs -r tar -cf - | tar -xf - -C "$OUT")
  (cd /tmp/exp && find "$exp/runs" \( -name 'report.md' -o -name 'curves.svg' -o -name 'first_batch.png' \
     -o -name 'metrics.csv' -o -name 'summary.json' \) | xargs -r tar -cf - | tar -xf - -C "$OUT")
done

section "combine benchmark (CPU)"
DEDA_BENCH_EXE=$D/bench_combine PYTHON="$PY" RUNS="${COMBINE_RUNS:-2}" timeout 120 tools/bench_combine.sh 2 ppm,jpeg 3

if [ -x $D/bench_sam ]; then
  section "SAM vit-base (cuda): Rust vs transformers"
  args=(--model sam-vit-base --device cuda --iters 10 --width 1500 --height 1000 --boxes 4)
  timeout 60 $D/bench_sam "${args[@]}"
  timeout 90 "$PY" tools/bench_sam.py "${args[@]}"
fi
if [ -x $D/bench_grounding_dino ]; then
  section "GroundingDINO tiny (cuda): Rust vs transformers"
  mkdir -p /tmp/gd
  timeout 90 "$PY" tools/bench_grounding_dino.py --height 800 --width 1066 --iters 10 --device cuda --save-weights /tmp/gd
  margs=(); [ -f /tmp/gd/model.safetensors ] && margs=(--model-dir /tmp/gd)
  timeout 60 $D/bench_grounding_dino "${margs[@]}" --height 800 --width 1066 --iters 10 --device cuda \
    || timeout 60 $D/bench_grounding_dino --height 800 --width 1066 --iters 10 --device cuda
fi

section "SD-1.5 transparent SDEdit and TTTI step (cuda fp16): deda vs diffusers"
# tools/bench_sd_peakmem.sh adds the peak GPU memory (nvidia-smi, per process) after each line.
PEAK=tools/bench_sd_peakmem.sh
timeout 90 $PEAK deda-sdedit $D/deda bench sdedit --device cuda --dtype fp16 --size 512 --iters 2
timeout 60 $PEAK deda-ttti-step $D/deda bench ttti-step --device cuda --dtype fp16 --size 512 --batch 32 --micro-batch 8 --steps 2
if ls $D/whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $D/whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
for only in sdedit ttti-step; do
  timeout 100 $PEAK "diffusers-$only" "$PY" tools/bench_sd.py --device cuda --dtype fp16 --size 512 \
    --batch 32 --micro-batch 8 --iters 2 --only "$only"
done

section "done"
