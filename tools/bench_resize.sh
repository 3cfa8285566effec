#!/usr/bin/env bash
# Pillow-exact bilinear resize (SAM/GroundingDINO preprocessing) beside Pillow itself, same shapes.
# Usage: tools/bench_resize.sh [REPEATS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/env.sh
cargo run --quiet --release -p deda-onnx --example bench_resize -- "${1:-30}"
python tools/bench_resize.py "${1:-30}"
