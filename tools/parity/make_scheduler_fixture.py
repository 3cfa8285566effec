#!/usr/bin/env python3
"""Parity fixture for deda-edit's DDIM scheduler (crates/edit/src/scheduler.rs).

Pinned versions: see tools/parity/requirements.txt (diffusers==0.35.2, torch==2.11.0).

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_scheduler_fixture.py \
        [--out crates/edit/tests/fixtures/ddim_scheduler.json]

The scheduler is diffusers' DDIMScheduler with Stable Diffusion 1.5's scheduler config
(runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json): num_train_timesteps 1000,
beta_start 0.00085, beta_end 0.012, beta_schedule "scaled_linear", clip_sample false,
set_alpha_to_one false, steps_offset 1, timestep_spacing "leading", prediction_type "epsilon";
step() with eta 0.

Output JSON (every float is a float32 value, printed so that it parses back exactly):
  versions             package versions
  betas, alphas_cumprod   (1000,)
  timesteps            {"1": [...], "10": [...], "25": [...], "50": [...]}: set_timesteps(n)
  img2img[]            {steps, strength, timesteps, t_start, num_steps}: as
                       StableDiffusionImg2ImgPipeline.get_timesteps (init_timestep =
                       min(int(steps*strength), steps); t_start = max(steps - init_timestep, 0);
                       timesteps[t_start * order:]); num_steps = steps - t_start
  add_noise            {x0, noise (16,), cases: [{t, sqrt_ab, sqrt_1mab, noisy}]}
  step                 {steps: 25, sample (16,), model_outputs [3 x (16,)], cases: [{t, prev_t,
                       prev_sample}]}: three consecutive step() calls starting at the img2img
                       start timestep of (25 steps, strength 0.4), each output feeding the next;
                       final: step(model_outputs[0], t=1, sample), whose previous timestep is < 0
                       (uses final_alpha_cumprod = alphas_cumprod[0], set_alpha_to_one false)
"""
import argparse
import importlib.metadata as md
import json
import os

import numpy as np
import torch
from diffusers import DDIMScheduler

SD15 = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    timestep_spacing="leading",
    prediction_type="epsilon",
)


def f32list(t):
    return [float(v) for v in np.asarray(t, dtype=np.float32).reshape(-1)]


def get_timesteps(sched, steps, strength):
    sched.set_timesteps(steps)
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    ts = sched.timesteps[t_start * sched.order :]
    return [int(t) for t in ts], t_start, steps - t_start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/edit/tests/fixtures/ddim_scheduler.json")
    args = ap.parse_args()
    sched = DDIMScheduler(**SD15)
    out = {
        "versions": {p: md.version(p) for p in ["diffusers", "torch"]},
        "config": SD15,
        "betas": f32list(sched.betas),
        "alphas_cumprod": f32list(sched.alphas_cumprod),
        "timesteps": {},
        "img2img": [],
    }
    for n in [1, 10, 25, 50]:
        sched.set_timesteps(n)
        out["timesteps"][str(n)] = [int(t) for t in sched.timesteps]
    for steps, strength in [(25, 0.4), (50, 0.75), (10, 1.0), (25, 0.0), (10, 0.7), (25, 0.3)]:
        ts, t_start, num = get_timesteps(sched, steps, strength)
        out["img2img"].append(
            {"steps": steps, "strength": strength, "timesteps": ts, "t_start": t_start, "num_steps": num}
        )

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, generator=g, dtype=torch.float32)
    noise = torch.randn(16, generator=g, dtype=torch.float32)
    cases = []
    for t in [1, 361, 999]:
        tt = torch.tensor([t])
        noisy = sched.add_noise(x0, noise, tt)
        ab = sched.alphas_cumprod[t]
        cases.append(
            {
                "t": t,
                "sqrt_ab": float(ab**0.5),
                "sqrt_1mab": float((1 - ab) ** 0.5),
                "noisy": f32list(noisy),
            }
        )
    out["add_noise"] = {"x0": f32list(x0), "noise": f32list(noise), "cases": cases}

    steps = 25
    ts, _, _ = get_timesteps(sched, steps, 0.4)
    sched.set_timesteps(steps)
    sample = torch.randn(16, generator=g, dtype=torch.float32)
    outputs = [torch.randn(16, generator=g, dtype=torch.float32) for _ in range(3)]
    step_cases = []
    x = sample
    for k in range(3):
        t = ts[k]
        x = sched.step(outputs[k], t, x, eta=0.0).prev_sample
        step_cases.append({"t": t, "prev_t": t - 1000 // steps, "prev_sample": f32list(x)})
    out["step"] = {
        "steps": steps,
        "sample": f32list(sample),
        "model_outputs": [f32list(o) for o in outputs],
        "cases": step_cases,
        "final": {"t": 1, "prev_sample": f32list(sched.step(outputs[0], 1, sample, eta=0.0).prev_sample)},
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f)
        f.write("\n")
    print(f"wrote {args.out}; img2img (25, 0.4) -> {out['img2img'][0]}")


if __name__ == "__main__":
    main()
