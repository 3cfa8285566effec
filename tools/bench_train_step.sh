#!/usr/bin/env bash
# Runs the training-step benchmark in Rust (tch) and PyTorch with the same arguments and prints
# both JSON lines and the ratio rust/pytorch of the median step times.
#   tools/bench_train_step.sh [model] [size] [batch] [steps] [device]   (default resnet18 112 16 10 cpu)
# Uses CARGO_TARGET_DIR if set; DEDA_BENCH_PROFILE=dev skips the release build (the workspace's
# dev profile already optimises dependencies, and the step's time is spent inside libtorch).
# Threads: both use libtorch's default intra-op thread count.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
source "$root/tools/env.sh"
args=("${1:-resnet18}" "${2:-112}" "${3:-16}" "${4:-10}" "${5:-cpu}")
cd "$root"
profile="${DEDA_BENCH_PROFILE:-release}"
cargo build --profile "$profile" -q -p deda-train --example bench_train_step
rust_line="$(cargo run --profile "$profile" -q -p deda-train --example bench_train_step -- "${args[@]}")"
py_line="$(python "$root/tools/bench_train_step.py" "${args[@]}")"
echo "$rust_line"
echo "$py_line"
python - "$rust_line" "$py_line" <<'PY'
import json, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"op": "train_step_ratio", "model": r["model"], "size": r["size"],
                  "batch": r["batch"], "rust_s": r["median_s"], "pytorch_s": p["median_s"],
                  "ratio": r["median_s"] / p["median_s"], "rust_threads": r["threads"],
                  "pytorch_threads": p["threads"], "device": r["device"]}))
PY
