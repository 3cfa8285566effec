#!/usr/bin/env python3
"""Reference timings for `deda bench sdedit` and `deda bench ttti-step` in PyTorch/diffusers,
full-size SD-1.5 + LayerDiffuse architectures with random weights, same shapes and loop:

- sdedit: LayerDiffuse transparent encode (SD VAE posterior + offset encoder), SDEdit with
  DDIMScheduler at strength 0.4 of 25 steps (10 UNet calls on a CFG batch of 2, guidance 7),
  transparent decode (VAE decode + UNet1024 with the 8-fold flip/rot90 median);
- ttti-step: one textual-inversion step of `batch` samples in micro-batches (text encoder with a
  trainable embedding table + UNet forward/backward, AdamW), timesteps in [0, 400].

Prints one JSON line per benchmark ({"impl": "diffusers", ...}); if diffusers/transformers are
missing it prints {"impl": "diffusers", "status": "reference unavailable", "error": ...}.
Usage: python tools/bench_sd.py [--device cuda] [--dtype fp16] [--size 512] [--batch 32]
       [--micro-batch 8] [--iters 3]
"""
import argparse
import importlib.util
import json
import os
import sys
import time

import torch


class SkipBench(Exception):
    """The benchmark was not selected by --only."""


def sync(dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(dev):
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_mib(dev):
    """torch's own peak (allocated tensors only, excludes the CUDA context and cache slack)."""
    if dev.startswith("cuda"):
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "fp32"])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--only", choices=["sdedit", "ttti-step"], default=None,
                    help="run one benchmark (one process each, so that tools/bench_sd_peakmem.sh "
                         "measures each alone, as for deda)")
    a = ap.parse_args()
    dev, dtype = a.device, (torch.float16 if a.dtype == "fp16" else torch.float32)
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel
        sys.path.insert(0, os.path.join(here, "parity"))
        from make_sd_fixture import SD15_CLIP, SD15_UNET, SD15_VAE
        spec = importlib.util.spec_from_file_location(
            "ld", os.path.join(here, "parity", "make_layer_diffuse_fixture.py"))
        ld = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ld)
        from make_pipeline_fixture import SD15_SCHEDULER
    except Exception as e:  # noqa: BLE001 - report, do not crash
        print(json.dumps({"impl": "diffusers", "status": "reference unavailable", "error": str(e)}))
        return
    torch.manual_seed(0)
    te = CLIPTextModel(CLIPTextConfig(**SD15_CLIP)).to(dev, dtype).eval()
    unet = UNet2DConditionModel(**SD15_UNET).to(dev, dtype).eval()
    vae = AutoencoderKL(**SD15_VAE).to(dev, dtype).eval()
    enc = ld.offset_encoder().to(dev, dtype).eval()
    dec = ld.TransparentDecoderUNet([32, 32, 64, 128, 256, 512, 512], 8).to(dev, dtype).eval()
    tag = {"impl": "diffusers", "device": dev, "dtype": a.dtype, "size": a.size}
    s = a.size

    # --- sdedit ---
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    alpha = (((yy - s / 2) ** 2 + (xx - s / 2) ** 2) <= (0.4 * s) ** 2).float()[None, None].to(dev)
    rgb = torch.rand(1, 3, s, s, device=dev)
    cond = torch.randn(1, 77, 768, device=dev, dtype=dtype)
    uncond = torch.randn(1, 77, 768, device=dev, dtype=dtype)
    sched = DDIMScheduler(**SD15_SCHEDULER)

    @torch.no_grad()
    def edit(times):
        t0 = time.perf_counter()
        dist = vae.encode(((rgb * 2 - 1) * alpha).to(dtype)).latent_dist
        off = enc.blocks(torch.cat([alpha, rgb], 1).to(dtype))
        z = (dist.mean + dist.std * off) * 0.18215
        sync(dev)
        t1 = time.perf_counter()
        sched.set_timesteps(25)
        ts = sched.timesteps[25 - int(25 * 0.4):]
        x = sched.add_noise(z, torch.randn_like(z), ts[:1])
        ctx = torch.cat([uncond, cond])
        for t in ts:
            eps = unet(torch.cat([x, x]), t, encoder_hidden_states=ctx).sample
            eu, ec = eps.chunk(2)
            x = sched.step(eu + 7.0 * (ec - eu), t, x).prev_sample
        sync(dev)
        t2 = time.perf_counter()
        zz = x / 0.18215
        pixel = (vae.decode(zz).sample / 2 + 0.5).clip(0, 1)
        ld.augmented(dec, pixel, zz)
        sync(dev)
        t3 = time.perf_counter()
        times.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))

    try:
        if a.only == "ttti-step":
            raise SkipBench
        reset_peak(dev)
        edit([])
        times = []
        for _ in range(a.iters):
            edit(times)
        n = len(times)
        print(json.dumps({**tag, "bench": "sdedit", "denoise_steps": 10, "guidance_scale": 7.0,
                          "augment": True, "iters": n,
                          "encode_s": sum(t[0] for t in times) / n,
                          "denoise_s": sum(t[1] for t in times) / n,
                          "decode_s": sum(t[2] for t in times) / n,
                          "total_s": sum(t[3] for t in times) / n,
                          "torch_max_allocated_mib": peak_mib(dev)}))
    except SkipBench:
        pass
    except Exception as e:  # noqa: BLE001
        print(json.dumps({**tag, "bench": "sdedit", "status": "failed", "error": str(e)}))

    # --- ttti-step ---
    try:
        if a.only == "sdedit":
            raise SkipBench
        reset_peak(dev)
        te.resize_token_embeddings(49409)
        emb = te.get_input_embeddings().weight
        emb.requires_grad_(True)
        opt = torch.optim.AdamW([emb], lr=1e-4, weight_decay=1e-2)
        lat = torch.randn(8, 4, s // 8, s // 8, device=dev)
        ids = torch.tensor([[49406, 320, 1125, 539, 320, 49408] + [49407] * 71], device=dev)
        orig = emb.detach().clone()
        keep = torch.ones(49409, dtype=torch.bool, device=dev)
        keep[49408] = False

        def step():
            for k in range(0, a.batch, a.micro_batch):
                n = min(a.micro_batch, a.batch - k)
                z = lat[torch.randint(0, 8, (n,), device=dev)]
                noise = torch.randn_like(z)
                t = torch.randint(0, 401, (n,), device=dev)
                noisy = sched.add_noise(z, noise, t).to(dtype)
                ctx = te(ids.expand(n, -1)).last_hidden_state
                pred = unet(noisy, t, encoder_hidden_states=ctx).sample
                (torch.nn.functional.mse_loss(pred.float(), noise) * n / a.batch).backward()
            opt.step()
            opt.zero_grad()
            with torch.no_grad():
                emb[keep] = orig[keep]

        step()
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(a.iters):
            step()
        sync(dev)
        print(json.dumps({**tag, "bench": "ttti-step", "batch": a.batch,
                          "micro_batch": a.micro_batch, "steps": a.iters,
                          "step_s": (time.perf_counter() - t0) / a.iters,
                          "torch_max_allocated_mib": peak_mib(dev)}))
    except SkipBench:
        pass
    except Exception as e:  # noqa: BLE001
        print(json.dumps({**tag, "bench": "ttti-step", "status": "failed", "error": str(e)}))


if __name__ == "__main__":
    main()
