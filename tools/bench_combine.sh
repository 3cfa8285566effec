#!/usr/bin/env bash
# Compares the Rust combination path (1 and 2 threads) with the Python/PIL reference on the same
# synthetic bank. Each configuration runs 3 times; the median images/s is reported.
# usage: tools/bench_combine.sh [SECONDS] [SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-5}"
SIZE="${2:-448}"
PY=.venv/bin/python
BANK="${DEDA_BENCH_BANK:-target/bench_combine_bank}"
cargo build --release -q -p deda-loader --example bench_combine
EXE="${CARGO_TARGET_DIR:-target}/release/examples/bench_combine"
if [ ! -f "$BANK/manifest.jsonl" ]; then
  "$EXE" --make-bank "$BANK"
fi
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { "$PY" -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
declare -A PER_CORE
for impl in rust1 rust2 pil; do
  vals=()
  for run in 1 2 3; do
    case $impl in
      rust1) line=$("$EXE" --bank "$BANK" --size "$SIZE" --seconds "$SECONDS_PER_RUN" --threads 1) ;;
      rust2) line=$("$EXE" --bank "$BANK" --size "$SIZE" --seconds "$SECONDS_PER_RUN" --threads 2) ;;
      pil) line=$("$PY" tools/bench_combine_pil.py "$BANK" --size "$SIZE" --seconds "$SECONDS_PER_RUN") ;;
    esac
    echo "$impl run $run: $line"
    vals+=("$(echo "$line" | field per_core_images_per_s)")
  done
  PER_CORE[$impl]=$(printf '%s\n' "${vals[@]}" | median)
done
echo "median per-core images/s: rust(1 thread) ${PER_CORE[rust1]}, rust(2 threads) ${PER_CORE[rust2]}, pil ${PER_CORE[pil]}"
"$PY" -c "
r1, r2, p = ${PER_CORE[rust1]}, ${PER_CORE[rust2]}, ${PER_CORE[pil]}
print(f'ratio rust/pil per core: 1 thread {r1 / p:.2f}x, 2 threads {r2 / p:.2f}x; rust 2-thread total {2 * r2:.0f} images/s')
"
