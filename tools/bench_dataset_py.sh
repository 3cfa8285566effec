#!/usr/bin/env bash
# The Python package's loader benchmark (issue 12 item 5): a PyTorch DataLoader over
# deda.torch.DedaDataset against the same De-DA combination in Python/PIL inside the DataLoader
# workers (tools/bench_dataset_py.py), 448 px, 2 workers, the same part bank, in one run.
#
# Uses ../shared/assets to build the real-photo mini-Waterbirds set (1200 training images) and
# its part bank (ground-truth masks, PPM CIPs at 512 px) once under target/bench_train_job/
# (shared with tools/bench_loader.sh and tools/bench_train_job.sh). The Python package must be
# installed in .venv (tools/setup.sh does it).
#
# usage: tools/bench_dataset_py.sh [WORKERS] [BATCHES]   (default 2 workers, 40 batches of 16)
# env: DEDA_BIN (default target/release/deda, used only to build the data); PYTHON (default
#      .venv/bin/python); ASSETS (default ../shared/assets); RUNS (default 3, per side,
#      alternating); P_AUG / P_MIX (default 0.5 / 0.5, p_syn 0); OUTPUT (float or uint8: what
#      both sides hand over; default float).
set -euo pipefail
# shellcheck source=tools/bench_waterbirds_set.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_waterbirds_set.sh" 512
WORKERS="${1:-2}"
BATCHES="${2:-40}"
echo "{\"load_before\": \"$(uptime | sed 's/.*load average: //')\", \"nproc\": $(nproc)}"
"$PY" tools/bench_dataset_py.py "$data" --bank "$bank" --workers "$WORKERS" --batches "$BATCHES" \
  --runs "${RUNS:-3}" --p-aug "${P_AUG:-0.5}" --p-mix "${P_MIX:-0.5}" --output "${OUTPUT:-float}"
echo "{\"load_after\": \"$(uptime | sed 's/.*load average: //')\"}"
