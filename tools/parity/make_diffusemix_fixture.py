#!/usr/bin/env python3
"""Parity fixture for deda-combine's DiffuseMix image rule (crates/combine/src/peers/diffusemix.rs).

Runs the reference's own functions, `Utils.combine_images`, `Utils.blend_images_with_resize` and
`Utils.is_black_image` from `augment/utils.py` of khawar-islam/diffuseMix at commit
e58418d15d2ea5179dbedc2fcac80fe393dc6ec0, on small random images.

Usage (from the repository root, with the project venv; numpy and pillow as in
tools/parity/requirements.txt):
    git clone https://github.com/khawar-islam/diffuseMix /tmp/diffuseMix
    git -C /tmp/diffuseMix checkout e58418d15d2ea5179dbedc2fcac80fe393dc6ec0
    .venv/bin/python tools/parity/make_diffusemix_fixture.py --reference /tmp/diffuseMix \
        [--out crates/combine/tests/fixtures/diffusemix.json]

`combine_images` draws its direction with `random.choice`; the script replaces that choice to
run both directions. Output JSON: versions, cases[] with {width, height, direction, original,
generated, fractal (flat RGB u8, row-major), hybrid, blended, is_black_generated}; plus
black_checks[] {width, height, pixels, is_black} for flat and mixed images.
"""
import argparse
import importlib.metadata as md
import json
import os
import random
import sys

import numpy as np
from PIL import Image


def rgb(rng, w, h, lo=0, hi=256):
    return rng.integers(lo, hi, size=(h, w, 3), dtype=np.uint8)


def flat(a):
    return [int(v) for v in np.asarray(a, dtype=np.uint8).reshape(-1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True, help="checkout of khawar-islam/diffuseMix")
    ap.add_argument("--out", default="crates/combine/tests/fixtures/diffusemix.json")
    args = ap.parse_args()
    sys.path.insert(0, args.reference)
    import augment.utils as ref  # noqa: E402

    rng = np.random.default_rng(0)
    cases = []
    for w, h, direction in [(48, 40, "horizontal"), (48, 40, "vertical"), (30, 26, "vertical"), (26, 30, "horizontal")]:
        o, g, f = rgb(rng, w, h), rgb(rng, w, h), rgb(rng, w, h)
        original, generated, fractal = (Image.fromarray(x) for x in (o, g, f))
        saved = ref.random.choice
        ref.random.choice = lambda options, d=direction: d
        try:
            hybrid = ref.Utils.combine_images(original, generated)
        finally:
            ref.random.choice = saved
        blended = ref.Utils.blend_images_with_resize(hybrid, fractal)
        cases.append(
            dict(width=w, height=h, direction=direction, original=flat(o), generated=flat(g), fractal=flat(f),
                 hybrid=flat(np.array(hybrid)), blended=flat(np.array(blended)),
                 is_black_generated=bool(ref.Utils.is_black_image(generated)))
        )
    checks = []
    for name, a in [
        ("white", np.full((10, 10, 3), 255, np.uint8)),
        ("near white", np.full((10, 10, 3), 254, np.uint8)),
        ("grey", np.full((10, 10, 3), 128, np.uint8)),
        ("random", rgb(rng, 10, 10)),
    ]:
        checks.append(dict(name=name, width=10, height=10, pixels=flat(a), is_black=bool(ref.Utils.is_black_image(Image.fromarray(a)))))
    out = {
        "versions": {p: md.version(p) for p in ["numpy", "pillow"]},
        "reference": "khawar-islam/diffuseMix@e58418d15d2ea5179dbedc2fcac80fe393dc6ec0 augment/utils.py",
        "cases": cases,
        "black_checks": checks,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh)
        fh.write("\n")
    print(f"wrote {args.out}: {len(cases)} cases; black checks {[(c['name'], c['is_black']) for c in checks]}")


if __name__ == "__main__":
    main()
