#!/usr/bin/env bash
# Peak memory of `deda decouple` on very large inputs (issue 14): a 12000x9000 JPEG photo with
# its ground-truth mask, and a 20000x20000 PNG (a 2.5 MB file) that must be a listed failure,
# never an abort; with ISNET set, the same photo segmented by ISNet. Prints the peak RSS (GNU
# time's "Maximum resident set size") of each run; each 32x32 run is the fixed cost (binary,
# model) that the large runs add to.
#
#   tools/bench_big_image.sh            # release binary (built if missing)
#   DEDA=target/debug/deda tools/bench_big_image.sh
#   GEN=target/release/examples/big_images DEDA=... tools/bench_big_image.sh   # no cargo
#   ISNET=path/to/isnet.onnx tools/bench_big_image.sh   # also an imagefolder run with ISNet
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
DEDA=${DEDA:-target/release/deda}
[ -x "$DEDA" ] || cargo build --release -p deda-cli --bin deda
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# GEN: a prebuilt crates/decouple/examples/big_images binary (skips the build)
if [ -z "${GEN:-}" ]; then
  cargo build --quiet --release -p deda-decouple --example big_images
  GEN=target/release/examples/big_images
fi
"$GEN" "$work/data"
ls -l "$work/data/train/photo"

mib() { echo $(($1 / 1024)); }

# the photo alone, then the huge PNG alone, then both in one image folder
mkdir -p "$work/photo-only/train/photo" "$work/photo-only/masks/train/photo" "$work/huge-only/train/photo"
ln -s "$work/data/train/photo/big.jpg" "$work/photo-only/train/photo/big.jpg"
ln -s "$work/data/masks/train/photo/big.png" "$work/photo-only/masks/train/photo/big.png"
ln -s "$work/data/train/photo/huge.png" "$work/huge-only/train/photo/huge.png"
cp -r "$work/data/test" "$work/photo-only/test"; cp -r "$work/data/test" "$work/huge-only/test"

report() {
  local name=$1 rc rss
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$name.time")
  rc=$(sed -n 's/.*Exit status: //p' "$work/$name.time")
  echo "$name: exit ${rc:-?}, peak RSS $(mib "$rss") MiB, $(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$name.time") wall"
  grep -E "decoupled|failed:" "$work/$name.out" | sed 's/^/    /' || true
}
measure() {
  local name=$1; shift
  /usr/bin/time -v "$DEDA" "$@" >"$work/$name.out" 2>"$work/$name.time" || true
  report "$name"
}
measure binary-baseline --help
# the stage's own cost: a 32x32 image with its ground-truth mask (a 16x16 square)
mkdir -p "$work/tiny-gt/train/photo" "$work/tiny-gt/masks/train/photo"
cp "$work/data/test/photo/t.png" "$work/tiny-gt/train/photo/t.png"
base64 -d >"$work/tiny-gt/masks/train/photo/t.png" <<'PNG'
iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAAAAABWESUoAAAAF0lEQVR42mNgGAUo4D8aGFUwshWMcAAAEvL/AW/P/NUAAAAASUVORK5CYII=
PNG
cp -r "$work/data/test" "$work/tiny-gt/test"
measure gt-32x32 decouple --dataset "scarce:$work/tiny-gt" --bank "$work/bank0"
measure photo-12000x9000 decouple --dataset "scarce:$work/photo-only" --bank "$work/bank1"
measure png-20000x20000 decouple --dataset "scarce:$work/huge-only" --bank "$work/bank2"
measure both-in-one-folder decouple --dataset "scarce:$work/data" --bank "$work/bank3"
if [ -n "${ISNET:-}" ]; then
  # the model's own cost: the same run on a 32x32 image
  mkdir -p "$work/tiny/train/photo"
  cp "$work/data/test/photo/t.png" "$work/tiny/train/photo/t.png"
  cp -r "$work/data/test" "$work/tiny/test"
  measure isnet-32x32-baseline decouple --dataset "imagefolder:$work/tiny" --bank "$work/bank5" \
    --segmenter "isnet:$ISNET"
  measure isnet-imagefolder decouple --dataset "imagefolder:$work/data" --bank "$work/bank4" \
    --segmenter "isnet:$ISNET"
fi
