#!/usr/bin/env bash
# The online combination benchmark: Rust (deda_loader::bench_combine, as `deda bench combine`)
# beside the straightforward Python/PIL implementation (tools/bench_combine_pil.py), both reading
# the SAME synthetic part bank from disk (CIPs stored at short side 448, in FORMAT).
#
# usage: tools/bench_combine.sh [THREADS] [FORMATS] [SECONDS] [SIZE]
#   THREADS  Rust worker threads for the multi-thread run (default 2; a 1-thread run is always
#            made for the per-core ratio)
#   FORMATS  CIP formats, comma separated: ppm (uncompressed, the bench default), jpeg (q95),
#            qoi, png (default "ppm,jpeg")
#   SECONDS  seconds per run (default 5); SIZE canvas side (default 448)
# env: DEDA_BENCH_EXE=prebuilt bench_combine example (skips cargo); PYTHON=interpreter;
#      DEDA_BIN=path/to/deda to time `deda bench combine` instead of the bench example (same
#      code); RUNS (default 3) runs per configuration, medians reported.
#
# Prints JSON lines: one per side and format ("side": "rust" | "pil") with images/s, per-core
# images/s, CPU ms per image (thread CPU time, robust on a busy machine), peak RSS and the
# bank's bytes per CIP; then one "ratio" line per format.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-2}"
FORMATS="${2:-ppm,jpeg}"
SECS="${3:-5}"
SIZE="${4:-448}"
RUNS="${RUNS:-3}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
# DEDA_BENCH_EXE: a prebuilt bench_combine example (e.g. on a machine without cargo).
if [ -n "${DEDA_BENCH_EXE:-}" ]; then
  EXE="$DEDA_BENCH_EXE"
else
  cargo build --release -q -p deda-loader --example bench_combine
  EXE="${CARGO_TARGET_DIR:-target}/release/examples/bench_combine"
fi
echo "{\"load_before\": \"$(uptime | sed 's/.*load average: //')\", \"nproc\": $(nproc)}"

rust_run() { # bank threads
  if [ -n "${DEDA_BIN:-}" ]; then
    "$DEDA_BIN" bench combine --bank "$1" --size "$SIZE" --seconds "$SECS" --threads "$2"
  else
    "$EXE" --bank "$1" --size "$SIZE" --seconds "$SECS" --threads "$2"
  fi
}

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

IFS=',' read -r -a formats <<< "$FORMATS"
for fmt in "${formats[@]}"; do
  BANK="target/bench_combine_bank_${fmt}_448"
  if [ ! -f "$BANK/manifest.jsonl" ]; then
    "$EXE" --make-bank "$BANK" --cip-format "$fmt" --cip-short-side 448 2>/dev/null
  fi
  CIP_BYTES=$("$PY" -c "
import pathlib, sys
files = [p for p in pathlib.Path('$BANK/parts/cip').rglob('*') if p.is_file()]
print(sum(p.stat().st_size for p in files) // max(len(files), 1))")
  extra() { echo "{\"side\": \"$1\", \"cip_format\": \"$fmt\", \"bank_bytes_per_cip\": $CIP_BYTES}"; }
  R1=$(for _ in $(seq "$RUNS"); do rust_run "$BANK" 1; done | summarise "$(extra rust)")
  echo "$R1"
  RT="$R1"
  if [ "$THREADS" != 1 ]; then
    RT=$(for _ in $(seq "$RUNS"); do rust_run "$BANK" "$THREADS"; done | summarise "$(extra rust)")
    echo "$RT"
  fi
  P=$(for _ in $(seq "$RUNS"); do
        "$PY" tools/bench_combine_pil.py "$BANK" --size "$SIZE" --seconds "$SECS"
      done | summarise "$(extra pil)")
  echo "$P"
  "$PY" -c '
import json, sys
r1, rt, p = (json.loads(a) for a in sys.argv[1:4])
per_core_1 = r1["per_core_images_per_s"] / p["per_core_images_per_s"]
per_core_t = rt["per_core_images_per_s"] / p["per_core_images_per_s"]
print(json.dumps({
    "ratio": "rust/pil", "cip_format": r1["cip_format"], "size": r1["size"],
    "bank_bytes_per_cip": r1["bank_bytes_per_cip"],
    "per_core_wall_1_thread": round(per_core_1, 2),
    "per_core_wall_%d_threads" % rt["threads"]: round(per_core_t, 2),
    "cpu_time_1_thread": round(p["cpu_ms_per_image"] / r1["cpu_ms_per_image"], 2),
    "cpu_time_%d_threads" % rt["threads"]: round(p["cpu_ms_per_image"] / rt["cpu_ms_per_image"], 2),
    "rust_images_per_s_%d_threads" % rt["threads"]: round(rt["images_per_s"], 1),
    "target_5x_per_core_met": per_core_1 >= 5.0,
    "target_400_per_s_on_2_threads_met": (rt["images_per_s"] >= 400.0) if rt["threads"] == 2 else None,
}))' "$R1" "$RT" "$P"
done
echo "{\"load_after\": \"$(uptime | sed 's/.*load average: //')\"}"
