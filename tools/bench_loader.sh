#!/usr/bin/env bash
# Loader-only benchmark at 448 px with De-DA on: `deda bench loader` (the loader `deda train`
# builds from a recipe: data set, part bank, combination, transforms) beside the PyTorch
# `DataLoader` doing the same in PIL worker processes (tools/bench_loader.py), no model on
# either side: batches of normalised float tensors, consumed and dropped.
#
# Uses ../shared/assets (the real photo cut-outs and scenes beside the repository) to build the
# real-photo mini-Waterbirds set once (`deda build-set mini-waterbirds`: 1200 training images,
# 256 px, so resize_short 512 upsamples) and its part bank (`deda decouple`, ground-truth masks,
# CIPs as PPM, as `deda experiment` stores them) under target/bench_train_job/ (shared with
# tools/bench_train_job.sh).
#
# usage: tools/bench_loader.sh [WORKERS] [BATCHES]   (default "1,2" and 40 batches of 16)
#   WORKERS  comma-separated loader threads / DataLoader workers; each count is one setting
# env: DEDA_BIN (default target/release/deda); PYTHON (default .venv/bin/python, needs
#      torchvision); ASSETS (default ../shared/assets); RUNS (default 3) runs per side and
#      setting, medians reported; P_AUG / P_MIX (default 0.5 / 0.5, p_syn 0).
#
# Per side and setting one JSON line (medians): images/s, per-core images/s (= images/s /
# workers), CPU ms per image (the whole process, workers included: hardly depends on how busy
# the machine is); then a "ratio" line (deda/pytorch; target >= 5x per core).
set -euo pipefail
# shellcheck source=tools/bench_waterbirds_set.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_waterbirds_set.sh" 512
WORKERS="${1:-1,2}"
BATCHES="${2:-40}"
RUNS="${RUNS:-3}"
P_AUG="${P_AUG:-0.5}"
P_MIX="${P_MIX:-0.5}"
echo "{\"load_before\": \"$(uptime | sed 's/.*load average: //')\", \"nproc\": $(nproc), \"batches\": $BATCHES, \"runs\": $RUNS, \"p_aug\": $P_AUG, \"p_mix\": $P_MIX}"

cfg="$work/loader-448.toml"
cat > "$cfg" <<EOF
[data]
dataset = "mini-waterbirds:$data"

[loader]
batch_size = 16
resize_short = 512
crop = 448

[method]
name = "deda"
bank = "$bank"

[method.combine]
p_aug = $P_AUG
p_syn = 0.0
p_mix = $P_MIX

[train]
seed = 0
EOF

# Median of each numeric field over JSON lines on stdin, with extra fields merged in.
summarise() { # json-extra
  "$PY" -c '
import json, statistics, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
out = dict(runs[0])
for k, v in runs[0].items():
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        out[k] = statistics.median(r[k] for r in runs)
out["runs"] = len(runs)
out.update(json.loads(sys.argv[1]))
print(json.dumps(out))' "$1"
}

IFS=',' read -r -a counts <<< "$WORKERS"
for n in "${counts[@]}"; do
  R=$(for _ in $(seq "$RUNS"); do
        "$DEDA" bench loader --config "$cfg" --threads "$n" --batches "$BATCHES" 2>/dev/null
      done | summarise '{"side": "deda"}')
  echo "$R"
  P=$(for _ in $(seq "$RUNS"); do
        "$PY" tools/bench_loader.py "$data" --bank "$bank" --workers "$n" --batches "$BATCHES" \
          --p-aug "$P_AUG" --p-mix "$P_MIX" 2>/dev/null
      done | summarise '{"side": "pytorch"}')
  echo "$P"
  "$PY" -c '
import json, sys
r, p = (json.loads(a) for a in sys.argv[1:3])
per_core = r["per_core_images_per_s"] / p["per_core_images_per_s"]
print(json.dumps({
    "ratio": "deda/pytorch", "workers": r["threads"], "crop": r["crop"],
    "per_core_images_per_s": round(per_core, 2),
    "cpu_time_per_image": round(p["cpu_ms_per_image"] / r["cpu_ms_per_image"], 2),
    "deda_images_per_s": round(r["images_per_s"], 1),
    "pytorch_images_per_s": round(p["images_per_s"], 1),
    "target_5x_per_core_met": per_core >= 5.0,
}))' "$R" "$P"
done
echo "{\"load_after\": \"$(uptime | sed 's/.*load average: //')\"}"
