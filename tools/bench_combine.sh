#!/usr/bin/env bash
# Compares the Rust combination path (1 and 2 threads) with the Python/PIL reference on the same
# synthetic bank. Each configuration runs 3 times; medians are reported, both wall-clock
# (images/s per core) and CPU time per image (which hardly depends on how loaded the machine is).
# usage: tools/bench_combine.sh [SECONDS] [SIZE]
# env: DEDA_BENCH_BANK (bank folder, built if missing), DEDA_BENCH_CIP (bank writer flags of the
#      bench example, default "--cip-format jpeg --cip-short-side 448"; "--cip-short-side 0"
#      keeps the 640x480 CIPs).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-5}"
SIZE="${2:-448}"
PY=.venv/bin/python
BANK="${DEDA_BENCH_BANK:-target/bench_combine_bank}"
CIP_FLAGS="${DEDA_BENCH_CIP:---cip-format jpeg --cip-short-side 448}"
cargo build --release -q -p deda-loader --example bench_combine
EXE="${CARGO_TARGET_DIR:-target}/release/examples/bench_combine"
if [ ! -f "$BANK/manifest.jsonl" ]; then
  # shellcheck disable=SC2086
  "$EXE" --make-bank "$BANK" $CIP_FLAGS
fi
echo "load before: $(uptime)"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { "$PY" -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
declare -A PER_CORE CPU_MS
for impl in rust1 rust2 pil; do
  vals=()
  cpus=()
  for run in 1 2 3; do
    case $impl in
      rust1) line=$("$EXE" --bank "$BANK" --size "$SIZE" --seconds "$SECONDS_PER_RUN" --threads 1) ;;
      rust2) line=$("$EXE" --bank "$BANK" --size "$SIZE" --seconds "$SECONDS_PER_RUN" --threads 2) ;;
      pil) line=$("$PY" tools/bench_combine_pil.py "$BANK" --size "$SIZE" --seconds "$SECONDS_PER_RUN") ;;
    esac
    echo "$impl run $run: $line"
    vals+=("$(echo "$line" | field per_core_images_per_s)")
    cpus+=("$(echo "$line" | field cpu_ms_per_image)")
  done
  PER_CORE[$impl]=$(printf '%s\n' "${vals[@]}" | median)
  CPU_MS[$impl]=$(printf '%s\n' "${cpus[@]}" | median)
done
echo "load after: $(uptime)"
echo "median per-core images/s: rust(1 thread) ${PER_CORE[rust1]}, rust(2 threads) ${PER_CORE[rust2]}, pil ${PER_CORE[pil]}"
echo "median CPU ms per image: rust(1 thread) ${CPU_MS[rust1]}, rust(2 threads) ${CPU_MS[rust2]}, pil ${CPU_MS[pil]}"
"$PY" -c "
r1, r2, p = ${PER_CORE[rust1]}, ${PER_CORE[rust2]}, ${PER_CORE[pil]}
c1, c2, cp = ${CPU_MS[rust1]}, ${CPU_MS[rust2]}, ${CPU_MS[pil]}
print(f'ratio rust/pil per core (wall): 1 thread {r1 / p:.2f}x, 2 threads {r2 / p:.2f}x; rust 2-thread total {2 * r2:.0f} images/s')
print(f'ratio rust/pil per core (CPU time): 1 thread {cp / c1:.2f}x, 2 threads {cp / c2:.2f}x; 2 cores at that CPU cost: {2000 / c2:.0f} images/s')
"
