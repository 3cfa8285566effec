#!/usr/bin/env bash
# Full-size SD-1.5 text encoder / UNet step / VAE timings: deda (tch) and diffusers side by side,
# random weights, same shapes. Usage: tools/bench_sd_components.sh [--device cuda] [--half] [--size 512] [--batch 2]
# Python: $DEDA_BENCH_PYTHON, else .venv/bin/python, else python3 (needs torch; diffusers and
# transformers from tools/parity/requirements.txt, else the reference reports "unavailable").
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f tools/env.sh ] && source tools/env.sh
cargo build --release -q -p deda-sd --example sd_components_bench
bin="${CARGO_TARGET_DIR:-target}/release/examples/sd_components_bench"
"$bin" "$@"
py="${DEDA_BENCH_PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
if ! "$py" -c "import diffusers, transformers" 2>/dev/null; then
  # Everything pinned except torch (keep the machine's CUDA build).
  grep -v -e '^#' -e '^torch==' tools/parity/requirements.txt | xargs "$py" -m pip install -q 2>/dev/null || true
fi
"$py" tools/bench_sd_components.py "$@"
