#!/usr/bin/env bash
# A small real reproduction of the paper's Table 4 (10-shot CUB, ResNet-18 column) with
# `deda reproduce`: the real-photo scarce set (7 classes, 5 training images each) written in
# CUB-200-2011's official layout, decoupled with its ground-truth masks, every Table 4 recipe of
# the ResNet-18 column run through `--set` overrides that make it fit a 2-core CPU:
# ImageNet-pretrained EfficientNet-Lite0 at 128 px instead of ResNet-18 from scratch at 448
# (from scratch stays near chance on 35 images), k = 5 (the set has 5 per class), 10 epochs,
# cosine schedule, no synthetic CDPs (no diffusion weights here: p_syn = 0 for De-DA).
#   tools/mini_table4.sh ASSETS_DIR WORK_DIR [extra deda reproduce flags, e.g. --seeds 0,1,2]
# ASSETS_DIR holds cutouts.tsv/backgrounds.tsv and their photos; EfficientNet-Lite0 comes from
# tools/fetch_models.sh (.cache/models). The table lands in WORK_DIR/runs/tables/table4.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="$(cd "$1" && pwd)"
mkdir -p "$2"
work="$(cd "$2" && pwd)"
shift 2
deda="${DEDA_BIN:-$root/target/release/deda}"
weights="$root/.cache/models/efficientnet-lite0/efficientnet_lite0.safetensors"
[ -f "$weights" ] || { echo "mini_table4: $weights missing; run tools/fetch_models.sh" >&2; exit 2; }
cd "$work"
mkdir -p weights && cp -n "$weights" weights/
[ -f data/CUB_200_2011/images.txt ] ||
  "$deda" build-set scarce --layout cub --assets "$assets" --out data/CUB_200_2011
"$deda" decouple --dataset cub:data/CUB_200_2011 --bank banks/cub-10shot-seed0 --segmenter ground-truth
start=$(date +%s)
"$deda" reproduce table4 --recipes "$root/configs/paper" --runs runs --only resnet18 \
  --set data.k_shot=5 \
  --set model.name=efficientnet_lite0 --set model.pretrained=weights/efficientnet_lite0.safetensors \
  --set loader.batch_size=8 --set loader.threads=2 --set loader.resize_short=146 --set loader.crop=128 \
  --set 'loader.mean=[0.49804, 0.49804, 0.49804]' --set 'loader.std=[0.50196, 0.50196, 0.50196]' \
  --set 'optim.schedule={ kind = "cosine", warmup_epochs = 2.0, min_lr = 0.0 }' \
  --set train.epochs=10 --set train.device=cpu \
  --set deda:method.combine.p_syn=0.0 "$@"
echo "mini_table4: $(( ($(date +%s) - start) / 60 )) min of training on $(nproc) CPU cores" >&2
