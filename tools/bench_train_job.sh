#!/usr/bin/env bash
# Whole-job benchmark: `deda train` beside the same job written the usual PyTorch way
# (tools/bench_train_job.py: Dataset + DataLoader workers + torchvision ResNet-18 +
# torch.optim.SGD), with De-DA off and on, on the real-photo mini-Waterbirds set.
#
# Uses ../shared/assets (the real photo cut-outs and scenes beside the repository) to build the
# set once with `deda build-set mini-waterbirds` (1200 training, 440 test images, 256 px) and its
# part bank with `deda decouple` (ground-truth masks, CIPs as PPM at the training resize, as
# `deda experiment` stores them), under target/bench_train_job/ (tools/bench_waterbirds_set.sh).
#
# usage: tools/bench_train_job.sh [EPOCHS] [WORKERS]   (default 3 epochs, 2 loader workers)
# env: DEDA_BIN (default target/release/deda, built by tools/setup.sh); PYTHON (default
#      .venv/bin/python; needs torchvision, e.g. torchvision==0.26.0 for torch 2.11.0);
#      ASSETS (default ../shared/assets); RUNS (default 1) runs per side and setting;
#      TRAIN_N / TEST_N (default 480 / 160) training / test images timed (a few minutes on 2
#      CPU cores; the whole set is 1200 / 440).
#
# Same job on both sides: ResNet-18 from scratch, 112 px crops of images resized to 128 (shorter
# side), flip, batch 16, SGD lr 0.01 (constant) momentum 0.9 Nesterov wd 5e-4, soft-label
# cross-entropy, a checkpoint after every epoch, the test split evaluated after the last one;
# De-DA on: p_aug 0.5, p_mix 0.5, p_syn 0 (no synthetic CDPs), CDP of the sample on a CIP of the
# other class, area-weighted soft labels. libtorch's default intra-op threads on both sides.
#
# Prints JSON lines: one per side and setting (whole-command wall-clock seconds and CPU seconds of
# all its threads and processes (robust on a busy machine), training
# images/s = images / median seconds of the epochs without evaluation (each includes its
# checkpoint), mean data-wait fraction), then one "ratio" line per setting (deda/pytorch: > 1 means
# deda is faster).
set -euo pipefail
# The set and its bank with CIPs at the training resize, 128 px (target/bench_train_job/bank-128).
# shellcheck source=tools/bench_waterbirds_set.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_waterbirds_set.sh" 128
EPOCHS="${1:-3}"
WORKERS="${2:-2}"
RUNS="${RUNS:-1}"
TRAIN_N="${TRAIN_N:-480}"
TEST_N="${TEST_N:-160}"
# The timed set: TRAIN_N training and TEST_N test rows of the built set, evenly spaced (every
# bird keeps its share), in their own metadata.csv beside links to the same image folders.
sub="$work/data-$TRAIN_N-$TEST_N"
if [ ! -f "$sub/metadata.csv" ]; then
  mkdir -p "$sub"
  ln -sfn ../data/images "$sub/images"
  ln -sfn ../data/masks "$sub/masks"
  "$PY" - "$data/metadata.csv" "$TRAIN_N" "$TEST_N" > "$sub/metadata.csv.tmp" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
want = {"0": int(sys.argv[2]), "2": int(sys.argv[3])}
print(lines[0])
for split, n in want.items():
    rows = [l for l in lines[1:] if l.split(",")[3] == split]
    step = max(len(rows) / max(n, 1), 1.0)
    for k in range(min(n, len(rows))):
        print(rows[int(k * step)])
PY
  mv "$sub/metadata.csv.tmp" "$sub/metadata.csv"
fi
data="$sub"
echo "{\"load_before\": \"$(uptime | sed 's/.*load average: //')\", \"nproc\": $(nproc), \"epochs\": $EPOCHS, \"workers\": $WORKERS, \"runs\": $RUNS, \"train_images\": $TRAIN_N, \"test_images\": $TEST_N}"

recipe() { # method -> recipe path
  local f="$work/$1.toml"
  cat > "$f" <<EOF
[data]
dataset = "mini-waterbirds:$data"

[model]
name = "resnet18"

[loader]
batch_size = 16
threads = $WORKERS
resize_short = 128
crop = 112

[optim]
lr = 0.01

[optim.schedule]
kind = "constant"

[method]
name = "$1"
EOF
  if [ "$1" = deda ]; then
    cat >> "$f" <<EOF
bank = "$bank"

[method.combine]
p_aug = 0.5
p_syn = 0.0
p_mix = 0.5
EOF
  fi
  cat >> "$f" <<EOF

[train]
epochs = $EPOCHS
eval_every = $EPOCHS
seed = 0
device = "cpu"
EOF
  echo "$f"
}

# Summary of one run: per-epoch JSON (deda: metrics.jsonl; pytorch: its line) + wall seconds.
summarise() { # side setting "wall cpu" epochs-json-file metadata.csv
  "$PY" - "$@" <<'PY'
import json, statistics, sys
side, setting, path = sys.argv[1], sys.argv[2], sys.argv[4]
wall, cpu = (float(x) for x in sys.argv[3].split())
text = open(path).read()
if side == "deda":
    epochs = [json.loads(l) for l in text.splitlines() if l.strip()]
    last = len(epochs) - 1
    n = sum(1 for l in open(sys.argv[5]).read().splitlines()[1:] if l.split(",")[3] == "0")
    rows = [{"images": n - e["bad_samples"], "seconds": e["seconds"], "wait": e["data_wait_fraction"],
             "top1": e.get("top1"), "eval": e["epoch"] == last} for e in epochs]
else:
    epochs = json.loads(text.strip().splitlines()[-1])["epochs"]
    rows = [{"images": e["images"], "seconds": e["seconds"], "wait": e["data_wait_fraction"],
             "top1": e["top1"], "eval": e["top1"] is not None} for e in epochs]
timed = [r for r in rows if not r["eval"]] or rows
print(json.dumps({
    "side": side, "setting": setting, "wall_s": round(wall, 2), "cpu_s": round(cpu, 1),
    "train_images_per_s": round(statistics.median(r["images"] / r["seconds"] for r in timed), 2),
    "epoch_s": [round(r["seconds"], 2) for r in rows],
    "data_wait_fraction": round(statistics.fmean(r["wait"] for r in rows), 3),
    "final_top1": rows[-1]["top1"],
}))
PY
}

# Runs a command, writing "wall_seconds cpu_seconds" (the command and all its processes: user +
# system) to the first argument.
timed() { # out-file cmd...
  "$PY" -c '
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%f %f\n" % (wall, r.ru_utime + r.ru_stime))
sys.exit(rc)' "$@"
}
for setting in off on; do
  method=vanilla
  bank_arg=()
  if [ "$setting" = on ]; then
    method=deda
    bank_arg=(--bank "$bank")
  fi
  cfg="$(recipe "$method")"
  rm -f "$work/lines-$setting"
  for run in $(seq "$RUNS"); do
    rd="$work/runs/deda-$setting-$run"
    rm -rf "$rd"
    timed "$work/time" "$DEDA" train --config "$cfg" --run-dir "$rd" >/dev/null \
      2>"$work/deda-$setting.log"
    summarise deda "$setting" "$(cat "$work/time")" "$rd/metrics.jsonl" "$data/metadata.csv" \
      | tee -a "$work/lines-$setting"
    timed "$work/time" "$PY" tools/bench_train_job.py "$data" "${bank_arg[@]}" \
      --epochs "$EPOCHS" --workers "$WORKERS" > "$work/pytorch-$setting.json" \
      2>"$work/pytorch-$setting.log"
    summarise pytorch "$setting" "$(cat "$work/time")" "$work/pytorch-$setting.json" \
      "$data/metadata.csv" | tee -a "$work/lines-$setting"
  done
  "$PY" - "$setting" "$work/lines-$setting" <<'PY'
import json, statistics, sys
setting, path = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(path) if l.strip()]
med = lambda side, k: statistics.median(l[k] for l in lines if l["side"] == side)
print(json.dumps({
    "ratio": "deda/pytorch", "setting": "de-da " + setting, "runs": len(lines) // 2,
    "wall_clock": round(med("pytorch", "wall_s") / med("deda", "wall_s"), 3),
    "train_images_per_s": round(med("deda", "train_images_per_s") / med("pytorch", "train_images_per_s"), 3),
    "cpu_time": round(med("pytorch", "cpu_s") / med("deda", "cpu_s"), 3),
    "deda_data_wait": round(med("deda", "data_wait_fraction"), 4),
    "pytorch_data_wait": round(med("pytorch", "data_wait_fraction"), 4),
    "target_1x_met": med("pytorch", "wall_s") >= med("deda", "wall_s"),
}))
PY
  rm -f "$work/lines-$setting"
done
echo "{\"load_after\": \"$(uptime | sed 's/.*load average: //')\"}"
