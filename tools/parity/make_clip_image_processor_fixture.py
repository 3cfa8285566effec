#!/usr/bin/env python3
"""Parity fixture for the CLIP filters' image preprocessing (crates/sd/src/generators/scorer.rs,
`clip_pixel_values`): transformers' `CLIPImageProcessor` (the PIL one Diff-Mix's
`scripts/filter_syn_data.py` gets from `CLIPProcessor`): shortest side resized with Pillow's
bicubic filter, centre crop, rescale 1/255, CLIP mean/std.

Pinned versions: transformers==4.57.3 (tools/parity/requirements.txt) and Pillow 12.3.0 (the
references ran on Pillow <= 12; Pillow 13 may resample vertically first: see
tools/parity/make_pil_resize_fixture.py), installed beside the venv's own:

    .venv/bin/pip install --target .cache/pillow12 pillow==12.3.0
    PYTHONPATH=.cache/pillow12 .venv/bin/python tools/parity/make_clip_image_processor_fixture.py \
        [--out crates/sd/tests/fixtures/clip_image_processor.safetensors]

Writes one safetensors file: for each case i, `image.{i}` (H, W, 3) u8 (seeded random, a hard
edge in it), `crop.{i}` (S, S, 3) u8 (the processor's resized and cropped bytes: do_rescale and
do_normalize off), `pixel_values.{i}` (1, 3, S, S) f32 (the processor's output), `size.{i}` (1,)
i64 = S; `spread` (1,) f64: the float32 output against the same normalisation in float64
(parity_spread.py).
"""
import argparse
import os
import sys

import numpy as np
import PIL
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPImageProcessor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_spread import spread  # noqa: E402

# (width, height, processor size): landscape and portrait (odd margins), square down, no-op,
# upsampling, and a portrait more than twice as tall as wide (Pillow 13's other pass order)
CASES = [(45, 37, 32), (29, 50, 24), (80, 80, 32), (32, 32, 32), (20, 26, 32), (15, 41, 12)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures/clip_image_processor.safetensors")
    args = ap.parse_args()
    if int(PIL.__version__.split(".")[0]) >= 13:
        raise SystemExit(f"Pillow {PIL.__version__}: the references ran on Pillow <= 12 (see the header)")
    rng = np.random.default_rng(7)
    mean = np.array(CLIPImageProcessor().image_mean, dtype=np.float64).reshape(3, 1, 1)
    std = np.array(CLIPImageProcessor().image_std, dtype=np.float64).reshape(3, 1, 1)
    out32, out64, tensors = {}, {}, {}
    for i, (w, h, s) in enumerate(CASES):
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        img[:, w // 2 : w // 2 + 2] = 255
        img[h // 3 : h // 3 + 2, :] = 0
        pil = Image.fromarray(img)
        proc = CLIPImageProcessor(size={"shortest_edge": s}, crop_size={"height": s, "width": s})
        raw = CLIPImageProcessor(
            size={"shortest_edge": s}, crop_size={"height": s, "width": s},
            do_rescale=False, do_normalize=False,
        )
        pv = proc(images=pil, return_tensors="pt")["pixel_values"]
        crop = raw(images=pil, return_tensors="np")["pixel_values"][0]  # (3, S, S) float of u8 values
        assert np.all(crop == np.round(crop)), "crop values are whole numbers"
        crop_u8 = crop.astype(np.uint8).transpose(1, 2, 0)
        tensors[f"image.{i}"] = torch.from_numpy(img.copy())
        tensors[f"crop.{i}"] = torch.from_numpy(np.ascontiguousarray(crop_u8))
        tensors[f"pixel_values.{i}"] = pv.float().contiguous()
        tensors[f"size.{i}"] = torch.tensor([s], dtype=torch.int64)
        out32[f"pixel_values.{i}"] = pv.float()
        out64[f"pixel_values.{i}"] = torch.from_numpy(((crop.astype(np.float64) / 255.0 - mean) / std)[None])
    tensors["spread"] = torch.tensor([spread(out32, out64)], dtype=torch.float64)
    save_file(tensors, args.out, metadata={"pillow": PIL.__version__, "cases": str(len(CASES))})
    print(f"wrote {args.out}: {len(CASES)} cases")


if __name__ == "__main__":
    main()
