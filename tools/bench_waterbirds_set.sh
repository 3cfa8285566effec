#!/usr/bin/env bash
# Sourced (not run) by the benchmarks tools/bench_loader.sh, tools/bench_dataset_py.sh and
# tools/bench_train_job.sh: their common set-up. Goes to the repository root, sources
# tools/env.sh, sets DEDA (DEDA_BIN, default target/release/deda), PY (PYTHON, default
# .venv/bin/python), ASSETS (default ../shared/assets), work=target/bench_train_job,
# data=$work/data and bank=$work/bank-$side, and builds, once, the real-photo mini-Waterbirds
# set from the assets (`deda build-set mini-waterbirds`: 1200 training images, 256 px) and its
# part bank (`deda decouple`, ground-truth masks, CIPs as PPM at $side px, as `deda experiment`
# stores them).
#
# usage (from a script in tools/): source "$(dirname "${BASH_SOURCE[0]}")/bench_waterbirds_set.sh" [SIDE]
#   SIDE  the CIPs' shorter side (default 512)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=/dev/null
source tools/env.sh
DEDA="${DEDA_BIN:-target/release/deda}"
PY="${PYTHON:-.venv/bin/python}"
ASSETS="${ASSETS:-../shared/assets}"
side="${1:-512}"
work=target/bench_train_job
data="$work/data"
bank="$work/bank-$side"
mkdir -p "$work"
if [ ! -f "$data/metadata.csv" ]; then
  "$DEDA" build-set mini-waterbirds --assets "$ASSETS" --out "$data" >&2
fi
if [ ! -f "$bank/manifest.jsonl" ]; then
  "$DEDA" decouple --dataset "mini-waterbirds:$data" --bank "$bank" --cip-format ppm \
    --cip-short-side "$side" >&2
fi
