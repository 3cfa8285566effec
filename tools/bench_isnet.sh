#!/usr/bin/env bash
# ISNet speed, Rust (crates/onnx example bench_isnet) vs Python onnxruntime, same model, photos
# and thread count. Prints both JSON lines and the ratio rust/python of images per second.
# Usage: tools/bench_isnet.sh [THREADS] [ROUNDS]   (env: DEDA_SHARED, VIRTUAL_ENV, ORT_DYLIB_PATH)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
threads="${1:-2}"
rounds="${2:-1}"
shared="${DEDA_SHARED:-$root/../shared}"
model="$shared/models/isnet/isnet-general-fp16.onnx"
photos="$shared/assets/photos"
for f in "$model" "$photos"; do
  [ -e "$f" ] || { echo "missing $f (set DEDA_SHARED)" >&2; exit 1; }
done
export VIRTUAL_ENV="${VIRTUAL_ENV:-$root/.venv}"
python="$VIRTUAL_ENV/bin/python"
[ -x "$python" ] || { echo "missing $python (run tools/setup.sh)" >&2; exit 1; }
cd "$root"
cargo build --release -q -p deda-onnx --example bench_isnet
target="${CARGO_TARGET_DIR:-$root/target}"
rust_line="$("$target/release/examples/bench_isnet" "$model" "$photos" "$threads" "$rounds")"
py_line="$("$python" "$root/tools/bench_isnet.py" "$model" "$photos" "$threads" "$rounds")"
echo "$rust_line"
echo "$py_line"
"$python" - "$rust_line" "$py_line" <<'PY'
import json, sys
rust, py = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"op": "isnet", "threads": rust["threads"],
                  "ratio_rust_over_python": round(rust["images_per_s"] / py["images_per_s"], 3),
                  "cpu_ratio_python_over_rust":
                      round(py["cpu_s_per_image"] / max(rust["cpu_s_per_image"], 1e-9), 3)}))
PY
