#!/usr/bin/env python3
"""Reference timings of the full-size SD-1.5 components in diffusers/transformers (random
weights), on the same shapes as crates/sd/examples/sd_components_bench.rs. Prints one JSON line
per component: {"impl":"diffusers",...,"ms":...}, or {"impl":"diffusers","status":"reference
unavailable",...} when diffusers/transformers cannot be imported.

Usage: python tools/bench_sd_components.py [--device cuda] [--half] [--size 512] [--batch 2] [--iters 5]
"""
import argparse
import json
import os
import sys
import time

import torch


def timed(device, iters, fn):
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    ms = []
    for _ in range(max(iters, 1)):
        t = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        ms.append((time.perf_counter() - t) * 1e3)
    return sorted(ms)[len(ms) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--half", action="store_true")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    a = ap.parse_args()
    dtype = torch.float16 if a.half else torch.float32
    try:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "parity"))
        from make_sd_fixture import SD15_CLIP, SD15_UNET, SD15_VAE
    except Exception as e:  # noqa: BLE001 - report, do not crash
        print(json.dumps({"impl": "diffusers", "status": "reference unavailable", "error": str(e)}))
        return
    torch.manual_seed(0)
    dev = a.device
    te = CLIPTextModel(CLIPTextConfig(**SD15_CLIP)).to(dev, dtype).eval()
    unet = UNet2DConditionModel(**SD15_UNET).to(dev, dtype).eval()
    vae = AutoencoderKL(**SD15_VAE).to(dev, dtype).eval()
    n, s = a.batch, a.size
    ids = torch.randint(0, 49408, (n, 77), device=dev)
    lat = torch.randn(n, 4, s // 8, s // 8, device=dev, dtype=dtype)
    ctx = torch.randn(n, 77, 768, device=dev, dtype=dtype)
    img = torch.rand(1, 3, s, s, device=dev, dtype=dtype) * 2 - 1
    t = torch.tensor(500.0, device=dev)
    tag = {"impl": "diffusers", "dtype": "f16" if a.half else "f32", "device": dev}
    with torch.no_grad():
        runs = [
            ("text_encoder", f"{n}x77", lambda: te(ids).last_hidden_state),
            ("unet", f"{n}x4x{s // 8}x{s // 8}", lambda: unet(lat, t, ctx).sample),
            ("vae_encode", f"1x3x{s}x{s}", lambda: vae.encode(img).latent_dist.mean),
            ("vae_decode", f"1x4x{s // 8}x{s // 8}", lambda: vae.decode(lat[:1]).sample),
        ]
        for name, shape, fn in runs:
            print(json.dumps({**tag, "component": name, "shape": shape,
                              "ms": round(timed(dev, a.iters, fn), 2)}))


if __name__ == "__main__":
    main()
