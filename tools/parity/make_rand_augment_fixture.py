#!/usr/bin/env python3
"""Parity fixture for deda-loader's RandAugment: torchvision's operations on a uint8 image.

For each of the 14 operations of torchvision.transforms.RandAugment's augmentation space, with
the magnitude of bin 9 of 31 (the defaults) and both signs for signed operations, applies
torchvision.transforms.autoaugment._apply_op to a fixed 3x20x24 uint8 tensor (NEAREST, fill None),
the path RandAugment takes for tensors.

Pinned versions: python 3.x, torch==2.11.0, torchvision==0.26.0, numpy 2.x.

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_rand_augment_fixture.py [--out crates/loader/tests/fixtures/rand_augment]

Writes <out>/input.bin (H*W*3 bytes, HWC RGB), <out>/outputs.bin (the outputs, HWC, one after the
other) and <out>/cases.json: {"height", "width", "cases": [{"op", "magnitude"}...]} in the
order of outputs.bin.
"""
import argparse
import json
import os

import torch
from torchvision.transforms import InterpolationMode, RandAugment
from torchvision.transforms.autoaugment import _apply_op


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/loader/tests/fixtures/rand_augment")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    h, w = 20, 24
    gen = torch.Generator().manual_seed(3)
    noise = torch.randint(0, 256, (3, h, w), generator=gen)
    yy = torch.arange(h).view(1, h, 1) * 9
    xx = torch.arange(w).view(1, 1, w) * 7
    img = ((noise // 3 + yy + xx + torch.tensor([0, 60, 120]).view(3, 1, 1)) % 256).to(torch.uint8)
    ra = RandAugment()
    space = ra._augmentation_space(ra.num_magnitude_bins, (h, w))
    cases, outs = [], []
    for name, (mags, signed) in space.items():
        m = float(mags[ra.magnitude].item()) if mags.ndim > 0 else 0.0
        for s in ([1.0, -1.0] if signed else [1.0]):
            out = _apply_op(img, name, m * s, interpolation=InterpolationMode.NEAREST, fill=None)
            cases.append({"op": name, "magnitude": m * s})
            outs.append(out.permute(1, 2, 0).contiguous().numpy().tobytes())
    with open(os.path.join(args.out, "input.bin"), "wb") as f:
        f.write(img.permute(1, 2, 0).contiguous().numpy().tobytes())
    with open(os.path.join(args.out, "outputs.bin"), "wb") as f:
        f.write(b"".join(outs))
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"height": h, "width": w, "cases": cases}, f, indent=1)
    print("wrote", len(cases), "cases to", args.out)


if __name__ == "__main__":
    main()
