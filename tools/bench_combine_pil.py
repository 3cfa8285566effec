#!/usr/bin/env python3
"""Reference Python/PIL + numpy implementation of De-DA's online combination, for timing.

Same operation as `deda_loader::bench_combine` (one process, one thread): for each sample,
decode the CIP (in the bank's format: an uncompressed .ppm is read with numpy.fromfile, the
cheapest read Python has, several times cheaper than PIL's own PPM reader; .jpg through PIL's
libjpeg) and the CDP (PNG) from the bank's files via its
manifest.jsonl, resize the CIP to cover a size x size canvas (centre crop), scale/flip/rotate
the CDP with PIL, alpha-composite it at a random position, with p_mix = 0.5 a second CDP from
another class on top, and compute the visible-area label weights with numpy. Prints one JSON
line.

usage: bench_combine_pil.py BANK_DIR [--size 448] [--seconds 5]
"""
import argparse
import json
import random
import resource
import time
from pathlib import Path

import numpy as np
from PIL import Image

P_SYN, P_MIX = 0.25, 0.5
SCALE, CENTER, MAX_ROT, P_FLIP = (0.35, 0.85), (0.25, 0.75), 15.0, 0.5


def load_bank(bank):
    cdps, cips, syn = [], [], {}
    with open(bank / "manifest.jsonl") as f:
        for line in f:
            r = json.loads(line)
            if r["kind"] == "cdp":
                cdps.append(r)
            elif r["kind"] == "cip":
                cips.append(r)
            else:
                syn.setdefault(r["source_part"], []).append(r)
    return cdps, cips, syn


def load_cip(path):
    """The CIP as an RGB image; a binary PPM (P6, maxval 255) is read straight into numpy."""
    if path.suffix != ".ppm":
        return Image.open(path).convert("RGB")
    with open(path, "rb") as f:
        head = f.read(64)
    fields, pos = [], 2
    while len(fields) < 3:
        while head[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while head[end:end + 1].isdigit():
            end += 1
        fields.append(int(head[pos:end]))
        pos = end
    w, h, _ = fields
    pixels = np.fromfile(path, dtype=np.uint8, offset=pos + 1)
    return Image.fromarray(pixels.reshape(h, w, 3))


def cover(img, size):
    w, h = img.size
    s = max(size / w, size / h)
    cw, ch = size / s, size / s
    box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
    return img.resize((size, size), Image.BILINEAR, box=box).convert("RGBA")


def place(canvas, cdp, rng, size):
    scale = rng.uniform(*SCALE) * size / max(cdp.size)
    cdp = cdp.resize((max(1, round(cdp.width * scale)), max(1, round(cdp.height * scale))),
                     Image.BILINEAR, reducing_gap=2.0 if scale < 0.5 else None)
    if rng.random() < P_FLIP:
        cdp = cdp.transpose(Image.FLIP_LEFT_RIGHT)
    cdp = cdp.rotate(rng.uniform(-MAX_ROT, MAX_ROT), Image.BILINEAR, expand=True)
    cx, cy = rng.uniform(*CENTER) * size, rng.uniform(*CENTER) * size
    layer = Image.new("RGBA", (size, size))
    layer.paste(cdp, (round(cx - cdp.width / 2), round(cy - cdp.height / 2)))
    canvas.alpha_composite(layer)
    return np.asarray(layer.getchannel("A"), dtype=np.float32) / 255.0


def one(bank, cdps, cips, syn, by_class, rng, i, size):
    own = cdps[i % len(cdps)]
    others = [c for c in cips if c["class"] != own["class"]] or cips
    cip = rng.choice(others)
    layers = [own]
    if rng.random() < P_MIX:
        partners = [c for c in by_class if c["class"] != own["class"]]
        if partners:
            layers.append(rng.choice(partners))
    canvas = cover(load_cip(bank / cip["file"]), size)
    alphas = []
    for rec in layers:
        edits = syn.get(rec["id"], [])
        if edits and rng.random() < P_SYN:
            rec = rng.choice(edits)
        alphas.append(place(canvas, Image.open(bank / rec["file"]).convert("RGBA"), rng, size))
    visible = []
    for k, a in enumerate(alphas):
        t = np.ones_like(a)
        for b in alphas[k + 1:]:
            t *= 1.0 - b
        visible.append(float((a * t).sum()))
    total = sum(visible) or 1.0
    weights = [v / total for v in visible]
    return canvas.convert("RGB"), weights


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bank", type=Path)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    cdps, cips, syn = load_bank(args.bank)
    rng = random.Random(0)
    n, start, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < args.seconds:
        one(args.bank, cdps, cips, syn, cdps, rng, n, args.size)
        n += 1
    secs = time.perf_counter() - start
    cpu_ms = (time.process_time() - cpu0) * 1000.0 / max(n, 1)
    ips = n / secs
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"op": "combine", "impl": "pil", "size": args.size, "threads": 1,
                      "images": n, "seconds": secs, "images_per_s": ips,
                      "per_core_images_per_s": ips, "cpu_ms_per_image": cpu_ms,
                      "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
