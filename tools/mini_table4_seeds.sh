#!/usr/bin/env bash
# Issue 10 item 6: the few-shot mini-benchmark over seeds. The Table 4 recipes of the ResNet-18
# column for vanilla, Mixup, CutMix, Guided-SR and De-DA (copied into WORK_DIR/recipes/table4, so
# `deda reproduce` trains only these five), seeds 0,1,2, with CPU-scale `--set` overrides: the
# real-photo `scarce` set in CUB's layout (7 classes; 5 training objects per class, each pasted
# on MINI_TRAIN_PER_CUTOUT scenes: 10 training images per class, the paper's 10-shot; 3 held-out
# objects per class x MINI_TEST_PER_CUTOUT scenes for test), ground-truth masks for De-DA's
# decoupling, ImageNet-pretrained EfficientNet-Lite0 (from scratch stays near chance at this
# size), cosine schedule, no synthetic CDPs (no diffusion weights: p_syn = 0).
#   tools/mini_table4_seeds.sh ASSETS_DIR WORK_DIR [extra deda reproduce flags]
# Environment: MINI_SEEDS (default 0,1,2), MINI_ONLY (default resnet18), MINI_RUNS (default runs,
# the runs folder under WORK_DIR: give probes their own), MINI_CROP (default 128; the resize is
# crop x 8/7), MINI_EPOCHS (default 20), MINI_TRAIN_PER_CUTOUT (2), MINI_TEST_PER_CUTOUT (10),
# MINI_METHODS (default "vanilla mixup cutmix guided-sr deda"), DEDA_BIN (default
# target/release/deda).
# The table lands in WORK_DIR/$MINI_RUNS/tables/table4.md; runs already finished there are skipped.
# `deda reproduce` runs De-DA's chain (ground-truth decoupling into the recipe's own bank).
# Probes: extra `--set` flags, e.g. `--set deda:method.combine.cip_source=own`, with their own
# MINI_RUNS.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="$(cd "$1" && pwd)"
mkdir -p "$2"
work="$(cd "$2" && pwd)"
shift 2
deda="${DEDA_BIN:-$root/target/release/deda}"
seeds="${MINI_SEEDS:-0,1,2}"
only="${MINI_ONLY:-resnet18}"
runs="${MINI_RUNS:-runs}"
crop="${MINI_CROP:-128}"
resize=$(( crop * 8 / 7 ))
epochs="${MINI_EPOCHS:-20}"
train_per="${MINI_TRAIN_PER_CUTOUT:-2}"
test_per="${MINI_TEST_PER_CUTOUT:-10}"
methods="${MINI_METHODS:-vanilla mixup cutmix guided-sr deda}"
data="data/scarce-t${train_per}-e${test_per}/CUB_200_2011"
weights="$root/.cache/models/efficientnet-lite0/efficientnet_lite0.safetensors"
[ -f "$weights" ] || { echo "mini_table4_seeds: $weights missing; run tools/fetch_models.sh" >&2; exit 2; }
cd "$work"
mkdir -p weights recipes/table4 && cp -n "$weights" weights/
for m in $methods; do
  cp "$root/configs/paper/table4/cub10shot_resnet18_$m.toml" recipes/table4/
done
[ -f "$data/images.txt" ] ||
  "$deda" build-set scarce --layout cub --assets "$assets" --out "$data" \
    --train-per-cutout "$train_per" --test-per-cutout "$test_per"
start=$(date +%s)
"$deda" reproduce table4 --recipes recipes --runs "$runs" --only "$only" --seeds "$seeds" \
  --set "data.dataset=cub:$data" --set data.k_shot=10 \
  --set model.name=efficientnet_lite0 --set model.pretrained=weights/efficientnet_lite0.safetensors \
  --set loader.batch_size=8 --set loader.threads=2 \
  --set "loader.resize_short=$resize" --set "loader.crop=$crop" \
  --set 'loader.mean=[0.49804, 0.49804, 0.49804]' --set 'loader.std=[0.50196, 0.50196, 0.50196]' \
  --set 'optim.schedule={ kind = "cosine", warmup_epochs = 2.0, min_lr = 0.0 }' \
  --set "train.epochs=$epochs" --set train.device=cpu \
  --set deda:method.combine.p_syn=0.0 --set "deda:method.bank=banks/scarce-t${train_per}-deda" \
  --set 'deda:stages={ decouple = { segmenter = "ground-truth" } }' "$@"
echo "mini_table4_seeds: $(( $(date +%s) - start )) s of training on $(getconf _NPROCESSORS_ONLN) CPU cores (OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset})" >&2
