#!/usr/bin/env bash
# Regenerates every parity fixture into a temporary folder with the pinned reference packages and
# compares it with the committed one, numerically, within the tolerance derived from the
# reference's own spread (tools/parity/compare_fixtures.py).
#
# Usage (from the repository root): tools/parity/check_regenerate.sh [NAME...]
#   NAME: a fixture script without make_/_fixture.py (default: all of them)
# Needs the project venv with tools/parity/requirements.txt installed (torch 2.11.0, diffusers
# 0.35.2, transformers 4.57.3, gco-wrapper 3.0.8, efficientnet_lite_pytorch 0.1.0, einops 0.8.1,
# opencv-python-headless 4.10.0.84),
# for `clip_tokenizer`, `sam` and `efficientnet_lite` inputs found like the tests find them
# (testdata/, then .cache/, then ../shared/), and for `mix` a GuidedMixup checkout
# ($GUIDEDMIXUP_DIR, default .cache/GuidedMixup), for `diffusemix` a diffuseMix checkout
# ($DIFFUSEMIX_DIR, default .cache/diffuseMix); `alpha_pyramid` runs tools/alpha_pyramid_reference.py
# (opencv-python-headless 4.10.0.84); `pil_resize` needs Pillow 12 installed beside the venv's
# ($PILLOW12_DIR, default .cache/pillow12: `.venv/bin/pip install --target .cache/pillow12
# pillow==12.3.0`), and so does `clip_image_processor`. Not covered: crates/data/tests/fixtures/make_cars_mat.py
# (a data-format fixture, no reference numerics). Exits 1 if any fixture differs or a script fails.
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

locate() {
    for base in testdata .cache ../shared; do
        [ -e "$base/$1" ] && { echo "$base/$1"; return 0; }
    done
    return 1
}

# The efficientnet script reads <shared>/models/... and <shared>/assets/photos/...
shared_view() {
    local v="$TMP/shared"
    mkdir -p "$v/models" "$v/assets"
    local m p
    m=$(locate models/efficientnet-lite0) && ln -sfn "$PWD/$m" "$v/models/efficientnet-lite0"
    p=$(locate assets/photos) && ln -sfn "$PWD/$p" "$v/assets/photos"
    echo "$v"
}

# name | command (with OUT) | committed folder that OUT mirrors
run_one() {
    local name=$1 committed=$2
    shift 2
    local out="$TMP/$name"
    mkdir -p "$out"
    echo "== $name"
    if ! (OUT=$out; eval "$@") >"$TMP/$name.log" 2>&1; then
        echo "  FAILED to regenerate (log below)"
        tail -20 "$TMP/$name.log" | sed 's/^/  | /'
        return 1
    fi
    $PY tools/parity/compare_fixtures.py "$out" "$committed"
}

ALL=(resnet densenet vit efficientnet_lite sgd optim_sensitivity mix comixup rand_augment
     scheduler samplers clip_tokenizer sam grounding_dino sd pipeline layer_diffuse
     transparent_attn_sd diffusemix alpha_pyramid ip2p lora generators pil_resize clip_image_processor)
NAMES=("${@:-${ALL[@]}}")
fail=0
for n in "${NAMES[@]}"; do
    s="tools/parity/make_${n}_fixture.py"
    case $n in
    resnet | densenet | vit)
        run_one "$n" crates/nets/tests/fixtures '$PY '"$s"' --out $OUT' ;;
    efficientnet_lite)
        run_one "$n" crates/nets/tests/fixtures '$PY '"$s"' --out $OUT --shared '"$(shared_view)" ;;
    sgd) run_one "$n" crates/train/tests/fixtures/sgd '$PY '"$s"' --out $OUT' ;;
    optim_sensitivity)
        run_one "$n-adamw" crates/sd/tests/fixtures/adamw \
            '$PY '"$s"' --adamw $OUT --schedules $OUT/../schedules-tmp' &&
            run_one "$n-schedules" crates/train/tests/fixtures/schedules \
                '$PY '"$s"' --adamw $OUT/../adamw-tmp --schedules $OUT' ;;
    mix)
        # GuidedMixup is GPL-3.0 and not vendored: a checkout at the pinned commit (see
        # tools/parity/guidedmixup_original.py) in $GUIDEDMIXUP_DIR or .cache/GuidedMixup.
        gm=${GUIDEDMIXUP_DIR:-.cache/GuidedMixup}
        if [ ! -d "$gm/FGVC" ]; then
            echo "== $n: needs a GuidedMixup checkout in \$GUIDEDMIXUP_DIR or .cache/GuidedMixup"
            false
        else
            run_one "$n" crates/train/tests/fixtures/mix '$PY '"$s"' --out $OUT --guidedmixup '"$gm"
        fi ;;
    comixup) run_one "$n" crates/train/tests/fixtures/comixup_gco '$PY '"$s"' --out $OUT' ;;
    rand_augment) run_one "$n" crates/loader/tests/fixtures/rand_augment '$PY '"$s"' --out $OUT' ;;
    samplers)
        run_one "$n" crates/edit/tests/fixtures \
            '$PY tools/parity/make_sampler_fixtures.py --out-dir $OUT' ;;
    diffusemix)
        # a checkout of khawar-islam/diffuseMix (see the script) in $DIFFUSEMIX_DIR or .cache/diffuseMix
        dm=${DIFFUSEMIX_DIR:-.cache/diffuseMix}
        if [ ! -d "$dm" ]; then
            echo "== $n: needs a diffuseMix checkout in \$DIFFUSEMIX_DIR or .cache/diffuseMix"
            false
        else
            run_one "$n" crates/combine/tests/fixtures \
                '$PY '"$s"' --reference '"$dm"' --out $OUT/diffusemix.json'
        fi ;;
    scheduler)
        run_one "$n" crates/edit/tests/fixtures '$PY '"$s"' --out $OUT/ddim_scheduler.json' ;;
    clip_tokenizer)
        bpe=$(locate models/clip/bpe_simple_vocab_16e6.txt.gz) || bpe=missing
        run_one "$n" crates/edit/tests/fixtures \
            '$PY '"$s"' --bpe '"$bpe"' --out $OUT/clip_tokenizer.json' ;;
    sam)
        photo=$(locate assets/photos/eagle.jpg) || photo=missing
        run_one "$n" crates/sam/tests/fixtures '$PY '"$s"' --out $OUT --photo '"$photo" ;;
    grounding_dino) run_one "$n" crates/grounding_dino/tests/fixtures '$PY '"$s"' --out $OUT' ;;
    pipeline)
        run_one "$n" crates/sd/tests/fixtures \
            '$PY '"$s"' --out $OUT --layer-diffuse crates/sd/tests/fixtures/layer_diffuse_tiny' ;;
    sd | layer_diffuse | ip2p)
        run_one "$n" crates/sd/tests/fixtures '$PY '"$s"' --out $OUT' ;;
    transparent_attn_sd)
        run_one "$n" crates/sd/tests/fixtures/transparent_attn_tiny '$PY '"$s"' --out $OUT' ;;
    lora) run_one "$n" crates/sd/tests/fixtures/lora_tiny '$PY '"$s"' --out $OUT' ;;
    generators)
        run_one "$n" crates/sd/tests/fixtures \
            '$PY '"$s"' --out $OUT --pipeline crates/sd/tests/fixtures/pipeline_tiny' ;;
    pil_resize | clip_image_processor)
        # the references' Pillow (<= 12, horizontal pass first), installed beside the venv's
        p12=${PILLOW12_DIR:-.cache/pillow12}
        if [ ! -d "$p12/PIL" ]; then
            echo "== $n: needs Pillow 12 in \$PILLOW12_DIR or .cache/pillow12 (see the script)"
            false
        elif [ "$n" = pil_resize ]; then
            run_one "$n" crates/core/tests/fixtures \
                'PYTHONPATH='"$p12"' $PY '"$s"' --out $OUT/pil_resize.json'
        else
            run_one "$n" crates/sd/tests/fixtures \
                'PYTHONPATH='"$p12"' $PY '"$s"' --out $OUT/clip_image_processor.safetensors'
        fi ;;
    alpha_pyramid)
        run_one "$n" crates/decouple/tests/fixtures/alpha_pyramid \
            '$PY tools/alpha_pyramid_reference.py --out $OUT' ;;
    *) echo "== $n: unknown fixture script"; false ;;
    esac || fail=1
done
[ $fail = 0 ] && echo "all regenerated fixtures match the committed ones" || echo "SOME FIXTURES DIFFER"
exit $fail
