#!/usr/bin/env bash
# Packs what tools/device_session.sh needs on the GPU machine (no cargo there) into .device/
# (ignored by git, carried explicitly: run(command="tools/device_session.sh", carry=[".device"])):
#   .device/bins.tar.xz   release deda + the bench_sam / bench_grounding_dino examples, stripped
#   .device/assets/       the real photo cut-outs and scenes (cutouts.tsv, backgrounds.tsv + files)
# The weights are not carried: the session writes full-size random ones (tools/device_weights.py).
# Checks that .device/ stays under the 64 MiB the device tool carries.
#   usage: tools/device_pack.sh            env: ASSETS (default ../shared/assets), NO_BUILD=1
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=/dev/null
source tools/env.sh
ASSETS="${ASSETS:-../shared/assets}"
D=.device
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release -q -p deda-cli
  cargo build --release -q -p deda-sam --example bench_sam
  cargo build --release -q -p deda-grounding-dino --example bench_grounding_dino
fi
rm -rf "$D" && mkdir -p "$D/stage" "$D/assets"
cp target/release/deda "$D/stage/"
for ex in bench_sam bench_grounding_dino; do
  [ -x "target/release/examples/$ex" ] && cp "target/release/examples/$ex" "$D/stage/"
done
strip "$D"/stage/*
tar -cJf "$D/bins.tar.xz" -C "$D/stage" . && rm -rf "$D/stage"
[ -f "$ASSETS/cutouts.tsv" ] || { echo "no $ASSETS/cutouts.tsv (set ASSETS)" >&2; exit 1; }
cp -r "$ASSETS/cutouts" "$ASSETS/cutouts.tsv" "$ASSETS/backgrounds" "$ASSETS/backgrounds.tsv" "$D/assets/"
du -sh "$D"/*
kib=$(du -sk "$D" | cut -f1)
echo "$D: $((kib / 1024)) MiB of 64"
[ "$kib" -le $((64 * 1024)) ] || { echo "$D is over 64 MiB: the device tool will not carry it" >&2; exit 1; }
