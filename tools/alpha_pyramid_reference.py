#!/usr/bin/env python3
"""Reference for deda-decouple's alpha pyramid (LayerDiffuse RGB padding).

Mirrors `build_alpha_pyramid` / `pad_rgb` ("Written by lvmin at Stanford") from
lllyasviel/LayerDiffuse_DiffusersCLI: lib_layerdiffuse/vae.py, and writes golden fixtures for
crates/decouple/tests/alpha_pyramid_golden.rs. It is a fixture generator, not a second
implementation of the product.

Pinned versions (the fixtures were generated with these):
    numpy==2.4.6  opencv-python-headless==4.10.0.84

Usage (from the repository root, with the project venv; tools/parity/requirements.txt):
    .venv/bin/python tools/alpha_pyramid_reference.py              # regenerate the fixtures in place
    .venv/bin/python tools/alpha_pyramid_reference.py --out DIR    # write them into DIR instead
    .venv/bin/python tools/alpha_pyramid_reference.py --bench      # time pad_rgb on a 512x512 image
tools/parity/check_regenerate.sh alpha_pyramid regenerates them into a temporary folder and
compares them with the committed ones.

Fixture layout (crates/decouple/tests/fixtures/alpha_pyramid/):
    <case>.png       RGBA u8 input (alpha 255 = keep, 0 = fill)
    <case>.f32       expected output, raw little-endian f32, H*W*3, row-major (H, W, C)
    spread.json      the reference's own spread: the same code in float64 vs float32,
                     max |f32 - f64| / (1 + |f64|) over every case
"""
import argparse
import json
import os
import time

import cv2
import numpy as np

FIXTURE_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "crates", "decouple", "tests", "fixtures", "alpha_pyramid",
)


def build_alpha_pyramid(color, alpha, dk=1.2):
    pyramid = []
    current_premultiplied_color = color * alpha
    current_alpha = alpha
    while True:
        pyramid.append((current_premultiplied_color, current_alpha))
        H, W, C = current_alpha.shape
        if min(H, W) == 1:
            break
        size = (int(W / dk), int(H / dk))
        current_premultiplied_color = cv2.resize(
            current_premultiplied_color, size, interpolation=cv2.INTER_AREA)
        current_alpha = cv2.resize(current_alpha, size, interpolation=cv2.INTER_AREA)[:, :, None]
    return pyramid[::-1]


def pad_rgb(np_rgba_hwc_uint8, dtype=np.float32):
    np_rgba_hwc = np_rgba_hwc_uint8.astype(dtype) / 255.0
    pyramid = build_alpha_pyramid(color=np_rgba_hwc[..., :3], alpha=np_rgba_hwc[..., 3:])
    top_c, top_a = pyramid[0]
    fg = np.sum(top_c, axis=(0, 1), keepdims=True) / np.sum(
        top_a, axis=(0, 1), keepdims=True).clip(1e-8, 1e32)
    for layer_c, layer_a in pyramid:
        layer_h, layer_w, _ = layer_c.shape
        fg = cv2.resize(fg, (layer_w, layer_h), interpolation=cv2.INTER_LINEAR)
        if fg.ndim == 2:  # cv2 drops a trailing channel axis of size 1; never for 3 channels
            fg = fg[:, :, None]
        fg = layer_c + fg * (1.0 - layer_a)
    return fg


def ellipse_hole(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def make_cases():
    rng = np.random.default_rng(20240917)
    cases = {}

    # 1. random colours, hard hole
    h, w = 23, 37
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a = np.full((h, w), 255, np.uint8)
    a[ellipse_hole(h, w, 11, 17, 6, 10)] = 0
    cases["hole_37x23"] = np.dstack([rgb, a])

    # 2. smooth gradient + noise, hard hole touching the border, soft rim
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).astype(np.float64)
    rgb = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    a = np.full((h, w), 255, np.uint8)
    hole = ellipse_hole(h, w, 30, 50, 16, 20)
    rim = ellipse_hole(h, w, 30, 50, 19, 23) & ~hole
    a[rim] = rng.integers(0, 256, rim.sum()).astype(np.uint8)
    a[hole] = 0
    cases["hole_rim_64x48"] = np.dstack([rgb, a])

    # 3. partial alpha everywhere; square so that the 2x2 -> 1x1 step is taken
    h, w = 29, 29
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a = rng.integers(0, 256, (h, w), dtype=np.uint8)
    cases["partial_29x29"] = np.dstack([rgb, a])
    return cases


def write_fixtures(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    worst = 0.0
    for name, rgba in make_cases().items():
        out = pad_rgb(rgba).astype("<f4")
        assert out.shape == rgba.shape[:2] + (3,), out.shape
        out64 = pad_rgb(rgba, np.float64)
        worst = max(worst, float((np.abs(out - out64) / (1.0 + np.abs(out64))).max()))
        cv2.imwrite(os.path.join(out_dir, name + ".png"),
                    cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
        out.tofile(os.path.join(out_dir, name + ".f32"))
        print(f"{name}: {rgba.shape[1]}x{rgba.shape[0]}, out mean {out.mean():.5f}")
    with open(os.path.join(out_dir, "spread.json"), "w") as f:
        json.dump({
            "spread": worst,
            "how": "pad_rgb in float64 vs float32 (cv2 resizes in the input's type), "
                   "max |f32 - f64| / (1 + |f64|) over every case",
            "opencv": cv2.__version__,
        }, f, indent=1)
        f.write("\n")
    print(f"spread {worst:.3e}")


def bench():
    rng = np.random.default_rng(0)
    h = w = 512
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a = np.full((h, w), 255, np.uint8)
    a[ellipse_hole(h, w, 256, 256, 120, 160)] = 0
    rgba = np.dstack([rgb, a])
    pad_rgb(rgba)  # warm up
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        pad_rgb(rgba)
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"python pad_rgb 512x512: median {times[len(times) // 2] * 1e3:.2f} ms, "
          f"min {times[0] * 1e3:.2f} ms (cv2 {cv2.__version__}, threads {cv2.getNumThreads()})")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", action="store_true", help="time a 512x512 pad instead of writing fixtures")
    p.add_argument("--out", default=FIXTURE_DIR, help="folder to write the fixtures into")
    args = p.parse_args()
    bench() if args.bench else write_fixtures(args.out)
