#!/usr/bin/env python3
"""Parity fixtures for deda-edit's DPM-Solver++ multistep and Euler-ancestral schedulers
(crates/edit/src/dpm_solver.rs, crates/edit/src/euler_ancestral.rs).

Pinned versions: see tools/parity/requirements.txt (diffusers==0.35.2, torch==2.11.0, numpy).

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_sampler_fixtures.py \
        [--out-dir crates/edit/tests/fixtures]

Writes dpm_solver_multistep.json and euler_ancestral.json.

Which configurations, and why:
- Diff-Mix (Zhicaiwww/Diff-Mix, augmentation/diff_mix.py) loads SD-1.5 and replaces its scheduler
  by `DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)`, then samples img2img with
  num_inference_steps=25. SD-1.5's scheduler file (runwayml/stable-diffusion-v1-5,
  scheduler/scheduler_config.json) is a PNDMScheduler config; we rebuild it from that file's
  keys and convert it the same way, so keys the file does not set (timestep_spacing, solver
  order, algorithm) take DPMSolverMultistepScheduler's own defaults: dpmsolver++, order 2,
  midpoint, lower_order_final, final_sigmas_type "zero", timestep_spacing "linspace".
- DiffuseMix (khawar-islam/diffuseMix, augment/handler.py) loads timbrooks/instruct-pix2pix and
  sets `EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)`; the
  InstructPix2Pix pipeline's default is 100 steps. Its scheduler file has the same SD betas
  (scaled_linear 0.00085..0.012, 1000 steps, epsilon) and no timestep_spacing, so "linspace".

Every step() is diffusers' own, called in float32 on 1-D tensors of N values with model outputs
drawn here; Euler-ancestral's noise is read from the fixture by replacing the module's
`randn_tensor` with a function that hands out the recorded draws in order.

Tolerance: each run also records `spread` (with `how`), the reference's own float32 error as
deda-parity defines it (tools/parity/parity_spread.py): max |f32 - f64| / (1 + |f64|) between
diffusers' f32 samples and the same recurrence evaluated in float64 with numpy (schedule from
float64 betas). The Rust tests compare every element with deda_parity::Tolerance::from_spread
(max(4 x spread, 2 f32 ulps), absolute and relative); NaN or Inf anywhere fails.

Output JSON (floats are float32 values printed to parse back exactly):
  dpm_solver_multistep.json
    versions, config (the converted scheduler's config)
    timesteps {"10": [...], "25": [...]}, sigmas {"10": [...], "25": [...]}
    runs[]: {name, steps, begin_index (null = full run), strength, x0, noise (add_noise input,
             img2img only), noisy, sample, model_outputs [k x N], prev_samples [k x N],
             spread, how}
  euler_ancestral.json
    versions, config, timesteps {"10", "100"} (float32), sigmas {"10", "100"},
    init_noise_sigma {"10", "100"}
    runs[]: {name, steps, sample, model_outputs, noises, scaled_inputs, prev_samples,
             pred_original_samples, spread, how}
"""
import argparse
import importlib.metadata as md
import json
import os

import numpy as np
import torch
import diffusers.schedulers.scheduling_euler_ancestral_discrete as ea_mod
from diffusers import DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, PNDMScheduler

# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json (keys as in the file).
SD15_FILE = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}
# timbrooks/instruct-pix2pix scheduler/scheduler_config.json (keys that affect the scheduler).
PIX2PIX_FILE = {
    "_class_name": "EulerAncestralDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "trained_betas": None,
}
N = 16
HOW = "diffusers step() in float32 vs the same recurrence in float64 (numpy), max |f32 - f64| / (1 + |f64|) over every sample of the run"


def f32list(t):
    return [float(v) for v in np.asarray(t, dtype=np.float32).reshape(-1)]


def json_config(config):
    """The scheduler's config without private keys; non-finite floats as strings (JSON has none)."""
    out = {}
    for k, v in dict(config).items():
        if k.startswith("_"):
            continue
        out[k] = str(v) if isinstance(v, float) and not np.isfinite(v) else v
    return out


def versions():
    return {p: md.version(p) for p in ["diffusers", "torch", "numpy"]}


def alphas_cumprod_f64():
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


# ---------------------------------------------------------------- DPM-Solver++ (2M)


def dpm_scheduler():
    pndm = PNDMScheduler.from_config(SD15_FILE)
    return DPMSolverMultistepScheduler.from_config(pndm.config)


def dpm_f64(timesteps, x, outputs, begin):
    """The dpmsolver++ 2M recurrence (midpoint, final sigma 0) in float64."""
    ac = alphas_cumprod_f64()
    full = np.sqrt((1 - ac) / ac)
    sig = np.concatenate([full[np.asarray(timesteps)], [0.0]])
    n = len(timesteps)
    alpha = 1 / np.sqrt(sig**2 + 1)
    sigma = sig * alpha
    with np.errstate(divide="ignore"):
        lam = np.log(alpha) - np.log(sigma)
    prev_x0, lower, outs = None, 0, []
    x = x.astype(np.float64)
    for k, eps in enumerate(outputs):
        i = begin + k
        x0 = (x - sigma[i] * eps.astype(np.float64)) / alpha[i]
        final = i == n - 1
        h = lam[i + 1] - lam[i]
        if lower < 1 or final:
            x = (sigma[i + 1] / sigma[i]) * x - alpha[i + 1] * (np.exp(-h) - 1.0) * x0
        else:
            r0 = (lam[i] - lam[i - 1]) / h
            d1 = (x0 - prev_x0) / r0
            x = (sigma[i + 1] / sigma[i]) * x - alpha[i + 1] * (np.exp(-h) - 1.0) * (x0 + 0.5 * d1)
        prev_x0, lower = x0, min(lower + 1, 2)
        outs.append(x)
    return outs


def dpm_run(name, steps, strength, g):
    s = dpm_scheduler()
    s.set_timesteps(steps)
    ts = [int(t) for t in s.timesteps]
    run = {"name": name, "steps": steps, "strength": strength, "begin_index": None}
    if strength is None:
        begin = 0
        sample = torch.randn(N, generator=g, dtype=torch.float32)
    else:
        # StableDiffusionImg2ImgPipeline.get_timesteps, then prepare_latents' add_noise.
        init = min(int(steps * strength), steps)
        begin = max(steps - init, 0)
        s.set_begin_index(begin * s.order)
        x0 = torch.randn(N, generator=g, dtype=torch.float32)
        noise = torch.randn(N, generator=g, dtype=torch.float32)
        sample = s.add_noise(x0, noise, torch.tensor([ts[begin]]))
        run.update(begin_index=begin, x0=f32list(x0), noise=f32list(noise), noisy=f32list(sample))
    outputs = [torch.randn(N, generator=g, dtype=torch.float32) for _ in ts[begin:]]
    x, prevs = sample, []
    for t, eps in zip(ts[begin:], outputs):
        x = s.step(eps, t, x).prev_sample
        prevs.append(x)
    ref = dpm_f64(ts, sample.numpy(), [o.numpy() for o in outputs], begin)
    spread = max(float(np.max(np.abs(p.numpy().astype(np.float64) - r) / (1 + np.abs(r)))) for p, r in zip(prevs, ref))
    run.update(
        timesteps=ts[begin:],
        sample=f32list(sample),
        model_outputs=[f32list(o) for o in outputs],
        prev_samples=[f32list(p) for p in prevs],
        spread=spread,
        how=HOW,
    )
    return run


def dpm_fixture():
    g = torch.Generator().manual_seed(11)
    s = dpm_scheduler()
    cfg = json_config(s.config)
    out = {"versions": versions(), "config": cfg, "timesteps": {}, "sigmas": {}}
    for n in [1, 10, 25, 50]:
        s.set_timesteps(n)
        out["timesteps"][str(n)] = [int(t) for t in s.timesteps]
        out["sigmas"][str(n)] = f32list(s.sigmas)
    out["runs"] = [
        dpm_run("full 25 steps", 25, None, g),
        dpm_run("img2img 25 steps strength 0.7", 25, 0.7, g),
        dpm_run("img2img 25 steps strength 0.5", 25, 0.5, g),
        dpm_run("full 10 steps", 10, None, g),
    ]
    return out


# ---------------------------------------------------------------- Euler ancestral


class NoiseQueue:
    """Stands in for diffusers' randn_tensor inside the Euler-ancestral module."""

    def __init__(self):
        self.items = []

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        t = self.items.pop(0)
        assert tuple(t.shape) == tuple(shape), (t.shape, shape)
        return t.to(dtype=dtype)


def ea_scheduler():
    return EulerAncestralDiscreteScheduler.from_config(PIX2PIX_FILE)


def ea_f64(timesteps, x, outputs, noises):
    ac = alphas_cumprod_f64()
    full = np.sqrt((1 - ac) / ac)
    sig = np.concatenate([np.interp(np.asarray(timesteps, dtype=np.float64), np.arange(1000), full), [0.0]])
    x = x.astype(np.float64)
    outs = []
    for i, (eps, z) in enumerate(zip(outputs, noises)):
        s_from, s_to = sig[i], sig[i + 1]
        up = np.sqrt(s_to**2 * (s_from**2 - s_to**2) / s_from**2)
        down = np.sqrt(s_to**2 - up**2)
        x = x + eps.astype(np.float64) * (down - s_from) + z.astype(np.float64) * up
        outs.append(x)
    return outs


def ea_run(name, steps, g):
    s = ea_scheduler()
    s.set_timesteps(steps)
    ts = [float(t) for t in s.timesteps]
    sample = torch.randn(N, generator=g, dtype=torch.float32) * s.init_noise_sigma
    outputs = [torch.randn(N, generator=g, dtype=torch.float32) for _ in ts]
    noises = [torch.randn(N, generator=g, dtype=torch.float32) for _ in ts]
    queue = NoiseQueue()
    queue.items = list(noises)
    original = ea_mod.randn_tensor
    ea_mod.randn_tensor = queue
    try:
        x, prevs, preds, scaled = sample, [], [], []
        for t, eps in zip(s.timesteps, outputs):
            scaled.append(s.scale_model_input(x, t))
            out = s.step(eps, t, x)
            x = out.prev_sample
            prevs.append(x)
            preds.append(out.pred_original_sample)
    finally:
        ea_mod.randn_tensor = original
    assert not queue.items
    ref = ea_f64(ts, sample.numpy(), [o.numpy() for o in outputs], [z.numpy() for z in noises])
    spread = max(float(np.max(np.abs(p.numpy().astype(np.float64) - r) / (1 + np.abs(r)))) for p, r in zip(prevs, ref))
    return {
        "name": name,
        "steps": steps,
        "sample": f32list(sample),
        "model_outputs": [f32list(o) for o in outputs],
        "noises": [f32list(z) for z in noises],
        "scaled_inputs": [f32list(v) for v in scaled],
        "prev_samples": [f32list(p) for p in prevs],
        "pred_original_samples": [f32list(p) for p in preds],
        "spread": spread,
        "how": HOW,
    }


def ea_fixture():
    g = torch.Generator().manual_seed(12)
    s = ea_scheduler()
    cfg = json_config(s.config)
    out = {"versions": versions(), "config": cfg, "timesteps": {}, "sigmas": {}, "init_noise_sigma": {}}
    for n in [1, 10, 20, 100]:
        s.set_timesteps(n)
        out["timesteps"][str(n)] = f32list(s.timesteps)
        out["sigmas"][str(n)] = f32list(s.sigmas)
        out["init_noise_sigma"][str(n)] = float(s.init_noise_sigma)
    out["runs"] = [ea_run("100 steps (InstructPix2Pix default)", 100, g), ea_run("10 steps", 10, g)]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default="crates/edit/tests/fixtures")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name, fx in [("dpm_solver_multistep.json", dpm_fixture()), ("euler_ancestral.json", ea_fixture())]:
        path = os.path.join(args.out_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(fx, f, allow_nan=False)
            f.write("\n")
        spreads = {r["name"]: f"{r['spread']:.3e}" for r in fx["runs"]}
        print(f"wrote {path}; f32-vs-f64 spread per run: {spreads}")


if __name__ == "__main__":
    main()
