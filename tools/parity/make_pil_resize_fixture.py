#!/usr/bin/env python3
"""Parity fixture for deda-core's Pillow-exact resize (crates/core/src/pil_resize.rs).

Pillow's own `Image.resize(size, filter)` (BILINEAR and BICUBIC, `reducing_gap=None` as
`Image.resize` defaults to) on small seeded random RGB and L images: upsampling, downsampling
(the kernels' support grows with the reduction), one axis only, mixed, and DiffuseMix's
`resize((256, 256))` shape of change (non-square to square) scaled down. The outputs are integers,
so the Rust test compares them exactly.

Pillow version: the references (transformers' CLIPImageProcessor, torchvision's Resize on PIL
images, DiffuseMix's `Image.resize`) ran on Pillow <= 12, which always resamples horizontally
first. Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height shrinks
by more than twice what the width does, which rounds differently; deda follows Pillow <= 12, so
this script refuses Pillow 13 and later. The committed file was made with Pillow 12.3.0 installed
beside the venv's own:

    .venv/bin/pip install --target .cache/pillow12 pillow==12.3.0
    PYTHONPATH=.cache/pillow12 .venv/bin/python tools/parity/make_pil_resize_fixture.py \
        [--out crates/core/tests/fixtures/pil_resize.json]

Output JSON: versions {pillow, numpy}; images[] {mode ("RGB" or "L"), width, height, pixels
(flat u8, row-major, interleaved)}; cases[] {image (index), filter ("bilinear"/"bicubic"),
width, height, pixels}.
"""
import argparse
import json

import numpy as np
import PIL
from PIL import Image

FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/core/tests/fixtures/pil_resize.json")
    args = ap.parse_args()
    major = int(PIL.__version__.split(".")[0])
    if major >= 13:
        raise SystemExit(
            f"Pillow {PIL.__version__} ({PIL.__file__}) may resample vertically first; the "
            "references ran on Pillow <= 12: see this script's header"
        )
    rng = np.random.default_rng(0)
    images, cases = [], []
    # (mode, source size, target sizes)
    plan = [
        ("RGB", (17, 11), [(40, 25), (5, 4), (17, 30), (9, 11), (64, 7), (17, 11)]),
        ("RGB", (60, 45), [(7, 5), (24, 24), (13, 45)]),
        ("L", (13, 9), [(6, 20), (31, 2), (1, 1)]),
        # taller than wide, shrunk to a square (DiffuseMix's resize((256, 256)) of a portrait
        # photo): the height shrinks by more than twice the width, where Pillow 13 would differ
        ("RGB", (15, 40), [(12, 12), (15, 9)]),
    ]
    for mode, (w, h), targets in plan:
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        src = rng.integers(0, 256, size=shape, dtype=np.uint8)
        # a hard edge in the first column block, where the cubic's lobes overshoot and clip
        src[:, : w // 3] = 0
        src[:, w // 3 : w // 3 + 2] = 255
        images.append(dict(mode=mode, width=w, height=h, pixels=[int(v) for v in src.reshape(-1)]))
        img = Image.fromarray(src, mode)
        for tw, th in targets:
            for name, f in FILTERS.items():
                out = np.asarray(img.resize((tw, th), f))
                cases.append(
                    dict(image=len(images) - 1, filter=name, width=tw, height=th,
                         pixels=[int(v) for v in out.reshape(-1)])
                )
    doc = dict(versions=dict(pillow=PIL.__version__, numpy=np.__version__), images=images, cases=cases)
    with open(args.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
