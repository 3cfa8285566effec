#!/usr/bin/env bash
# Times SAM with random weights in Rust (deda-sam, tch) and in transformers on the same image
# size, boxes and device, and prints both JSON lines and the Rust/transformers time ratios.
#   tools/bench_sam.sh [model] [device] [iters]     (default sam-vit-base auto 10)
# Extra settings through the environment: BENCH_WIDTH, BENCH_HEIGHT (1500x1000), BENCH_BOXES (4).
# Python: $BENCH_PYTHON, else /opt/torch/.venv/bin/python if present, else the project venv.
# If that Python lacks transformers, the pinned versions from tools/parity/requirements.txt are
# pip-installed (no other package); when that fails the reference line says "reference
# unavailable" and only the Rust line is meaningful.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
source "$root/tools/env.sh"
model="${1:-sam-vit-base}"
device="${2:-auto}"
iters="${3:-10}"
common=(--model "$model" --device "$device" --iters "$iters"
        --width "${BENCH_WIDTH:-1500}" --height "${BENCH_HEIGHT:-1000}" --boxes "${BENCH_BOXES:-4}")
cd "$root"
profile="${DEDA_BENCH_PROFILE:-release}"
cargo build --profile "$profile" -q -p deda-sam --example bench_sam
rust_line="$(cargo run --profile "$profile" -q -p deda-sam --example bench_sam -- "${common[@]}")"

py="${BENCH_PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x /opt/torch/.venv/bin/python ]; then py=/opt/torch/.venv/bin/python; else py="$root/.venv/bin/python"; fi
fi
if ! "$py" -c "import transformers" 2>/dev/null; then
  pins=$(grep -E '^(transformers|tokenizers|huggingface-hub)==' "$root/tools/parity/requirements.txt" || true)
  # shellcheck disable=SC2086
  "$py" -m pip install -q $pins >&2 || echo "bench_sam.sh: could not install $pins" >&2
fi
py_line="$("$py" "$root/tools/bench_sam.py" "${common[@]}")"
echo "$rust_line"
echo "$py_line"
"$py" - "$rust_line" "$py_line" <<'PY'
import json, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if "error" in p:
    print(json.dumps({"op": "sam_ratio", "error": p["error"]}))
else:
    keys = ["preprocess_ms", "encoder_ms", "boxes_to_masks_ms"]
    print(json.dumps({"op": "sam_ratio", "model": r["model"], "device": r["device"],
                      **{k.replace("_ms", "_rust_over_ref"): r[k] / p[k] for k in keys}}))
PY
