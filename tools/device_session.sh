#!/usr/bin/env bash
# One GPU-machine session (no cargo and no network there). Sections 1-3 take about 7 min on one
# H100, section 4 about 4 min (estimates: no GPU has run this version; 4 = weights ~60 s, then per
# peer deda ~15-35 s incl. loading and the stand-in fine-tuning step, diffusers ~30-50 s): more than
# one 600-s device call, so pick sections with SECTIONS (default "1 2 3 4"). BUDGET (seconds,
# default 570) caps every step's timeout at what is left of it (less 15 s), so the script returns
# with its outputs before the call's limit; section 4 skips (and tables as skipped) a peer's side
# when under 30-40 s are left. The CPU dry run of everything took 280 s here (2 loaded cores).
#
#   here:    tools/device_pack.sh                       # release deda, stripped, + photo assets -> .device/
#   device:  run(command="tools/device_session.sh", carry=[".device"], timeout_s=600)
#            run(command="SECTIONS=4 tools/device_session.sh", carry=[".device"], timeout_s=420)  # the peers
#   dry run on a CPU (tiny weights and sizes, 2-shot, same steps, < 3 min; TINY= KSHOT=1 for the
#   full-size random weights on the CPU, which checks their names and configs load; on this 23 GB
#   2-core machine its Lang-SAM decouple grew past 23 GB RSS and was OOM-killed, so untried past it):
#            DEVICE=cpu tools/device_session.sh          # or: tools/device_session.sh --dry-run
#
# Steps (each under its own `timeout`; outputs and logs are copied to $OUT):
#  1. `deda run` end to end on a small CUB-layout set (`deda build-set scarce --layout cub` from the
#     real photo cut-outs in .device/assets: 35 training images, 7 classes) with full-size random-weight
#     GroundingDINO-T + SAM ViT-B (Lang-SAM decouple, prompt "bird"), SD-1.5 + LayerDiffuse (TTTI
#     invert, transparent SDEdit, fp16), then one training epoch (ResNet-50, 448 px, batch 16).
#     Weights: tools/device_weights.py (shapes from the committed name lists). Random detectors find
#     nothing or noise, so the recipe sets max_nothing_found = 1.0: decoupling still runs
#     GroundingDINO on every image and SAM on every box it returns, and a run where it returned no box
#     is flagged below (then the SAM cost is not in the decouple time; the SAM line of step 3 has it).
#     Per-stage seconds and peak memory (nvidia-smi polled every 0.5 s; RSS on a CPU), then hours for
#     full CUB / Aircraft / Cars (tools/device_extrapolate.py).
#  2. Training-step ratio vs PyTorch: `deda bench train-step` (the step `deda train` runs; fp32: deda
#     has no mixed precision) vs tools/bench_train_step.py (same step in PyTorch, fp32), ResNet-50,
#     448 px, batch 16, medians of 10 steps after 3 warm-up ones.
#  3. SAM / GroundingDINO encoder (Rust examples, if packed) and SD-1.5 transparent SDEdit + TTTI step
#     (deda vs diffusers when diffusers imports), as in results/device-session-2026-11-26.log.
#  4. Generative peers (issue 11): per peer `deda bench generate` (the generator `deda generate`
#     builds, fp16 on a GPU as `[stages.generate] dtype = "fp16"` loads it) and tools/bench_peers.py (diffusers: StableDiffusionImg2ImgPipeline
#     with PNDM for Real-Guidance (strength 0.1) and DA-Fusion (0.5), DPM-Solver++ 25 steps for
#     Diff-Mix (0.7), StableDiffusionInstructPix2PixPipeline + Euler ancestral 100 steps for
#     DiffuseMix), fp16 (fp32 on a CPU dry run), 512 px (DiffuseMix 256), 3 timed images after 1 warm-up, the CLIP
#     ViT-B/32 filter's scores timed with Real-Guidance and Diff-Mix; each process's peak GPU memory
#     by tools/bench_sd_peakmem.sh. Random full-size weights (tools/device_weights.py: SD-1.5,
#     InstructPix2Pix, CLIP); DA-Fusion's tokens and Diff-Mix's LoRA + tokens are one step of their
#     real fine-tuning on deda's side (random rows on the diffusers side; a merged LoRA costs
#     nothing): timing only. Table: $OUT/peers.md (deda s/image, diffusers s/image, ratio, peaks).
# The PyTorch whole job with 8 DataLoader workers (issue 13 item 2's GPU part) is not in this script.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--dry-run" ] && DEVICE=cpu
DEVICE="${DEVICE:-cuda}"
D=.device
OUT="${OUT:-/tmp/device-out}"
WORK="${WORK:-/tmp/deda-device}"
mkdir -p "$OUT" "$WORK"
section() { echo; echo "=== $1 ($(date +%T))"; }
SECTIONS="${SECTIONS:-1 2 3 4}"
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
START=$(date +%s)
BUDGET="${BUDGET:-570}"
# Seconds a step may take: its cap ($1), or what is left of BUDGET less a 15-s margin; 1 when less
# than $2 (default 20) is left (a `timeout 1` stops it at once; section 4 skips its steps then).
allow() { local left=$((BUDGET - ($(date +%s) - START) - 15)); [ "$left" -lt "${2:-20}" ] && echo 1 && return
  [ "$1" -lt "$left" ] && echo "$1" || echo "$left"; }
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date +%s.%N)" "$l"; done; }

if [ "$DEVICE" = cpu ]; then
  PY="${PYTHON:-.venv/bin/python}"
  DEDA="${DEDA:-target/release/deda}"
  ASSETS="${ASSETS:-../shared/assets}"
  TINY="${TINY---tiny}" KSHOT="${KSHOT:-2}" DTYPE=fp32 MODEL='name = "resnet18"
width = 8
layers = [1, 1, 1, 1]' RESIZE=40 CROP=32 BATCH=4 INV_STEPS=2 INV_BATCH=2 INV_MICRO=2 INV_SIZE=64
  EDIT_K=1 EDIT_STEPS=5 EDIT_SIZE=64 EPOCHS=1 STEP_ARGS=(--model resnet18 --size 64 --batch 4 --steps 2)
  PEER_ARGS=(--size 64 --steps 10 --source-size 64 --images 1 --warmup 1) PEER_CAP=120
else
  PY=/opt/torch/.venv/bin/python3
  [ -x "$PY" ] || PY=python3
  DEDA="${DEDA:-$D/deda}"
  ASSETS="${ASSETS:-$D/assets}"
  TINY= KSHOT="${KSHOT:-}" DTYPE=fp16 MODEL='name = "resnet50"' RESIZE=512 CROP=448 BATCH=16 INV_STEPS=20 INV_BATCH=32
  INV_MICRO=8 INV_SIZE=512 EDIT_K=3 EDIT_STEPS=25 EDIT_SIZE=512 EPOCHS=1
  STEP_ARGS=(--model resnet50 --size 448 --batch 16 --steps 10)
  PEER_ARGS=(--images 3 --warmup 1) PEER_CAP=100
fi
[ -f $D/bins.tar.xz ] && tar -xJf $D/bins.tar.xz -C $D
export LD_LIBRARY_PATH="$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))'):${LD_LIBRARY_PATH:-}"
export PYTHONUNBUFFERED=1
echo "device=$DEVICE deda=$DEDA python=$PY nproc=$(nproc)"
[ "$DEVICE" = cpu ] || nvidia-smi -L
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
[ -x "$DEDA" ] || { echo "missing $DEDA: run tools/device_pack.sh first"; exit 1; }

W="$WORK/weights"
if want 1; then
section "1a. random-weight models ($DEVICE${TINY:+, tiny})"
timeout "$(allow 240)" "$PY" tools/device_weights.py "$W" $TINY \
  --only grounding-dino-tiny,sam-vit-base,stable-diffusion-v1-5,LayerDiffuse || echo "weights: FAILED"
du -sh "$W"/* 2>/dev/null

section "1b. CUB-layout set from the real photos"
rm -rf "$WORK/set" "$WORK/bank" "$WORK/run"
timeout "$(allow 60)" "$DEDA" build-set scarce --layout cub --assets "$ASSETS" --out "$WORK/set" | tail -2
CLASSES=$(wc -l < "$WORK/set/classes.txt")
cat > "$WORK/recipe.toml" <<EOF
# tools/device_session.sh: the CUB De-DA chain at real model sizes on a small set
[data]
dataset = "cub:$WORK/set"
${KSHOT:+k_shot = $KSHOT}
[model]
$MODEL
[loader]
batch_size = $BATCH
threads = 8
resize_short = $RESIZE
crop = $CROP
[method]
name = "deda"
bank = "$WORK/bank"
[method.combine]
p_aug = 0.5
p_syn = 0.25
p_mix = 0.5
[stages.decouple]
segmenter = "langsam:$W/grounding-dino-tiny,$W/sam-vit-base"
prompt = "bird"
max_nothing_found = 1.0
[stages.sd]
weights = "$W/stable-diffusion-v1-5"
layer_diffuse = "$W/LayerDiffuse"
tokenizer = "testdata/models/clip/bpe_simple_vocab_16e6.txt.gz"
device = "$DEVICE"
dtype = "$DTYPE"
[stages.invert]
init_word = "bird"
strength = 0.4
steps = $INV_STEPS
batch = $INV_BATCH
micro_batch = $INV_MICRO
size = $INV_SIZE
[stages.edit]
editor = "sd"
k = $EDIT_K
strength = 0.4
steps = $EDIT_STEPS
size = $EDIT_SIZE
[train]
epochs = $EPOCHS
device = "$DEVICE"
EOF
cp "$WORK/recipe.toml" "$OUT/"

section "1c. deda run (plan, then the chain; $CLASSES classes${KSHOT:+, $KSHOT-shot})"
"$DEDA" run "$WORK/recipe.toml" --run-dir "$WORK/run" --plan | tee "$WORK/plan.txt"
IMAGES=$(sed -nE '1s/.*\(([0-9]+) training images.*/\1/p' "$WORK/plan.txt")
( while :; do
    if [ "$DEVICE" = cpu ]; then m=$(ps -C deda -o rss= | awk '{s += $1} END {print s / 1024}')
    else m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1); fi
    echo "$(date +%s.%N) ${m:-0}"; sleep 0.5
  done ) > "$OUT/run-memory.log" &
POLL=$!
timeout "$(allow "${RUN_TIMEOUT:-330}")" "$DEDA" run "$WORK/recipe.toml" --run-dir "$WORK/run" 2>&1 | stamp > "$OUT/run.log"
echo "deda run exit: ${PIPESTATUS[0]}"
kill "$POLL" 2>/dev/null
grep -vE "^[0-9.]+ +(epoch +[0-9]+ +[0-9]+/|.*\r)" "$OUT/run.log" | cut -d' ' -f2- | grep -v '^\s*$' | tail -25
grep -q "found nothing usable in $IMAGES of the $IMAGES" "$OUT/run.log" \
  && echo "NOTE: GroundingDINO (random weights) returned no box: SAM did not run inside decouple"
"$PY" tools/device_extrapolate.py "$OUT/run.log" "$OUT/run-memory.log" --images "$IMAGES" \
  --classes "$CLASSES" --invert-steps "$INV_STEPS" --epochs "$EPOCHS" | tee "$OUT/extrapolation.md"
fi

if want 2; then
section "2. training step vs PyTorch (${STEP_ARGS[*]})"
r=$(timeout "$(allow 120)" "$DEDA" bench train-step "${STEP_ARGS[@]}" --device "$DEVICE" | tail -1); echo "$r"
p=$(timeout "$(allow 120)" "$PY" tools/bench_train_step.py "${STEP_ARGS[1]}" "${STEP_ARGS[3]}" "${STEP_ARGS[5]}" \
  "${STEP_ARGS[7]}" "$DEVICE" | tail -1); echo "$p"
"$PY" - "$r" "$p" <<'PY' | tee -a "$OUT/train-step.jsonl"
import json, sys
try:
    r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    print(json.dumps({"op": "train_step_ratio", "model": r.get("model"), "size": r.get("size"),
                      "batch": r.get("batch"), "deda_s": r["median_s"], "pytorch_s": p["median_s"],
                      "pytorch_over_deda": p["median_s"] / r["median_s"]}))
except (ValueError, KeyError) as e:
    print(json.dumps({"op": "train_step_ratio", "error": str(e)}))
PY
fi

if want 3; then
section "3. component checks"
if [ "$DEVICE" = cpu ]; then
  echo "skipped on a CPU (full-size SAM, GroundingDINO, SD-1.5)"
else
  [ -x $D/bench_sam ] && timeout "$(allow 60)" $D/bench_sam --model sam-vit-base --device cuda --iters 10 \
    --width 1500 --height 1000 --boxes 4
  [ -x $D/bench_grounding_dino ] && timeout "$(allow 60)" $D/bench_grounding_dino --height 800 --width 1066 \
    --iters 10 --device cuda
  PEAK=tools/bench_sd_peakmem.sh
  timeout "$(allow 90)" $PEAK deda-sdedit "$DEDA" bench sdedit --device cuda --dtype fp16 --size 512 --iters 2
  timeout "$(allow 60)" $PEAK deda-ttti-step "$DEDA" bench ttti-step --device cuda --dtype fp16 --size 512 \
    --batch 32 --micro-batch 8 --steps 2
  if ls $D/whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $D/whl/*.whl \
      && export PYTHONPATH=/tmp/site
  fi
  if "$PY" -c 'import diffusers' 2>/dev/null; then
    for only in sdedit ttti-step; do
      timeout "$(allow 100)" $PEAK "diffusers-$only" "$PY" tools/bench_sd.py --device cuda --dtype fp16 --size 512 \
        --batch 32 --micro-batch 8 --iters 2 --only "$only"
    done
  else echo "diffusers not importable: the diffusers side skipped"; fi
fi
fi

if want 4; then
# fp16 on a GPU (the references' pipelines run in half precision; [stages.generate] dtype = "fp16"),
# fp32 on a CPU dry run.
PEER_DTYPE=fp16; [ "$DEVICE" = cpu ] && PEER_DTYPE=fp32
section "4. generative peers: deda bench generate vs diffusers (${PEER_ARGS[*]}, $PEER_DTYPE)"
# The SD-1.5 folder of section 1 is reused when it has its tokenizer/ (written since section 4).
NEED=instruct-pix2pix,clip-vit-base-patch32
[ -f "$W/stable-diffusion-v1-5/tokenizer/merges.txt" ] || NEED="stable-diffusion-v1-5,$NEED"
timeout "$(allow 200)" "$PY" tools/device_weights.py "$W" $TINY --only "$NEED" || echo "weights: FAILED"
if [ "$DEVICE" != cpu ] && ls $D/whl/*.whl >/dev/null 2>&1 && ! "$PY" -c 'import diffusers' 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $D/whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
"$PY" -c 'import diffusers, transformers' 2>/dev/null || echo "diffusers not importable: the diffusers side will fail"
: > "$OUT/peers.jsonl"
PEAK=tools/bench_sd_peakmem.sh
# Cheapest first, so that a short budget still measures some peers.
for spec in "real-guidance|--clip $W/clip-vit-base-patch32" "diff-mix|--strength 0.7 --object bird --clip $W/clip-vit-base-patch32" \
            "da-fusion|--strength 0.5" "diffusemix|"; do
  m=${spec%%|*}; read -r -a extra <<< "${spec#*|}"
  common=(--method "$m" --weights "$W/stable-diffusion-v1-5" --ip2p "$W/instruct-pix2pix" --device "$DEVICE"
          --dtype "$PEER_DTYPE" "${PEER_ARGS[@]}" "${extra[@]}")
  t=$(allow "$PEER_CAP" 30)
  if [ "$t" = 1 ]; then echo "{\"method\": \"$m\", \"impl\": \"deda\", \"status\": \"skipped: BUDGET\"}" | tee -a "$OUT/peers.jsonl"
  else timeout "$t" $PEAK "deda-$m" "$DEDA" bench generate "${common[@]}" 2>"$OUT/peers-deda-$m.err" \
    | tail -2 | tee -a "$OUT/peers.jsonl"; fi
  t=$(allow "$((PEER_CAP + 30))" 40)
  if [ "$t" = 1 ]; then echo "{\"method\": \"$m\", \"impl\": \"diffusers\", \"status\": \"skipped: BUDGET\"}" | tee -a "$OUT/peers.jsonl"
  else timeout "$t" $PEAK "diffusers-$m" "$PY" tools/bench_peers.py "${common[@]}" 2>"$OUT/peers-diffusers-$m.err" \
    | tail -2 | tee -a "$OUT/peers.jsonl"; fi
  tail -3 "$OUT/peers-deda-$m.err" "$OUT/peers-diffusers-$m.err" 2>/dev/null | grep -iE "error|killed|memory" | head -4
done
"$PY" tools/bench_peers.py --table "$OUT/peers.jsonl" --weights "$([ -n "$TINY" ] && echo "tiny (dry run: no meaning)" || echo full-size)" --device-name "$(
  [ "$DEVICE" = cpu ] && echo "CPU ($(nproc) cores)" || nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" \
  | tee "$OUT/peers.md"
fi
section "done ($(( $(date +%s) - START )) s)"
