#!/usr/bin/env bash
# GroundingDINO forward-pass benchmark: our Rust (tch) model beside transformers, full-size
# grounding-dino-tiny configuration, same image size, batch 1. Prints one JSON line per side and
# the ratio.
#   tools/bench_grounding_dino.sh [height] [width] [iters] [device]    (default 800 1066 10 cuda)
# Python: $DEDA_BENCH_PYTHON, else /opt/torch/.venv/bin/python if present, else the project venv.
# When transformers is missing it tries `pip install` of the pinned versions
# (tools/parity/requirements.txt); when that fails too, the reference line says
# "reference unavailable" and the Rust side runs with random weights.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
h="${1:-800}"; w="${2:-1066}"; iters="${3:-10}"; dev="${4:-cuda}"
py="${DEDA_BENCH_PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x /opt/torch/.venv/bin/python ]; then py=/opt/torch/.venv/bin/python; else py="$root/.venv/bin/python"; fi
fi
# build against the torch of that python
export LIBTORCH_USE_PYTORCH=1
export PATH="$(dirname "$py"):$PATH"
torch_lib="$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! "$py" -c 'import transformers' 2>/dev/null; then
  "$py" -m pip install -q "transformers==4.57.3" "tokenizers==0.22.2" "huggingface-hub==0.36.2" safetensors \
    >/dev/null 2>&1 || echo '{"note": "pip install of transformers failed; reference unavailable"}'
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
py_line="$("$py" tools/bench_grounding_dino.py --height "$h" --width "$w" --iters "$iters" --device "$dev" --save-weights "$work/gdino")"
cargo build --release -q -p deda-grounding-dino --example bench_grounding_dino || exit 1
model_args=()
if [ -f "$work/gdino/model.safetensors" ]; then model_args=(--model-dir "$work/gdino"); fi
rust_line="$(cargo run --release -q -p deda-grounding-dino --example bench_grounding_dino -- \
  "${model_args[@]}" --height "$h" --width "$w" --iters "$iters" --device "$dev")"
echo "$rust_line"
echo "$py_line"
"$py" - "$rust_line" "$py_line" <<'PY'
import json, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if "median_ms" in p:
    print(json.dumps({"op": "grounding_dino_forward_ratio", "height": r["height"], "width": r["width"],
                      "rust_ms": r["median_ms"], "transformers_ms": p["median_ms"],
                      "ratio": round(r["median_ms"] / p["median_ms"], 3), "device": p["device"]}))
PY
