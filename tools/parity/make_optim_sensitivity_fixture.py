#!/usr/bin/env python3
"""Sensitivity fixtures for deda's optimisers and schedules, against torch's own classes.

Pinned versions: python 3.11, torch==2.11.0 (CPU), numpy 2.x, safetensors 0.8.0.

Regenerate (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_optim_sensitivity_fixture.py \
        [--adamw crates/sd/tests/fixtures/adamw] [--schedules crates/train/tests/fixtures/schedules]

AdamW (TTTI's `AdamWRow`): `torch.optim.AdamW` (no amsgrad) on a (4, 8) tensor for STEPS steps
with fixed gradients, with hyper-parameters chosen so that each one matters far beyond the
tolerance: large weights (weight decay), gradients of very different scales, some near eps
(eps), changing signs (beta1, beta2). Writes <adamw>/adamw.safetensors:
  init (4, 8) f32, grad.k (4, 8) f32 for k < STEPS, after (4, 8) f32
  spread (1,) f64   max |f32 - f64| / (1 + |f64|) of `after` (the reference's own error)
  sens.<variant> (1,) f64  max |after - after(variant)| for no_weight_decay, no_beta1
                    (beta1 = 0), no_beta2 (beta2 = 0), no_eps (eps = 0), lr_x2
and <adamw>/meta.json with the hyper-parameters.

Schedules (deda-train's `LrSchedule`): torch.optim.lr_scheduler.MultiStepLR (milestones, gamma)
and CosineAnnealingLR (T_max, eta_min) stepped once per iteration; the warm-up factor of
Diff-Mix's LinearWarmup, min(1, (step + 1) / warmup), is applied on top of the cosine rate
(iterations 0..=total_steps: past T_max torch's cosine is periodic, deda's stays at min_lr).
Writes <schedules>/schedules.json: per case its parameters and the rate of every iteration, and
per hyper-parameter the largest change of the sequence when it is dropped.
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

from parity_spread import HOW

STEPS = 6
ADAMW = dict(lr=0.05, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.5)


def adamw_inputs():
    gen = torch.Generator().manual_seed(3)
    init = torch.randn(4, 8, generator=gen, dtype=torch.float64) * 3.0
    scales = torch.tensor([1e-4, 1e-2, 1.0, 10.0], dtype=torch.float64).reshape(4, 1)
    grads = [torch.randn(4, 8, generator=gen, dtype=torch.float64) * scales for _ in range(STEPS)]
    return init.float(), [g.float() for g in grads]


def run_adamw(init, grads, dtype, **cfg):
    p = init.to(dtype).clone().requires_grad_(True)
    opt = torch.optim.AdamW([p], amsgrad=False, foreach=False, **cfg)
    for g in grads:
        p.grad = g.to(dtype).clone()
        opt.step()
    return p.detach()


def adamw(out):
    init, grads = adamw_inputs()
    after = run_adamw(init, grads, torch.float32, **ADAMW)
    after64 = run_adamw(init, grads, torch.float64, **ADAMW)
    spread = ((after.double() - after64).abs() / (1 + after64.abs())).max().item()
    variants = {
        "no_weight_decay": dict(ADAMW, weight_decay=0.0),
        "no_beta1": dict(ADAMW, betas=(0.0, ADAMW["betas"][1])),
        "no_beta2": dict(ADAMW, betas=(ADAMW["betas"][0], 0.0)),
        "no_eps": dict(ADAMW, eps=0.0),
        "lr_x2": dict(ADAMW, lr=2 * ADAMW["lr"]),
    }
    data = {"init": init, "after": after, "spread": torch.tensor([spread], dtype=torch.float64)}
    for k, g in enumerate(grads):
        data[f"grad.{k}"] = g
    print(f"adamw: spread {spread:.3e}")
    for name, cfg in variants.items():
        moved = (run_adamw(init, grads, torch.float64, **cfg) - after64).abs().max().item()
        data[f"sens.{name}"] = torch.tensor([moved], dtype=torch.float64)
        print(f"adamw: {name} moves the result by {moved:.3e}")
    os.makedirs(out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in data.items()}, os.path.join(out, "adamw.safetensors"))
    meta = dict(ADAMW, betas=list(ADAMW["betas"]), steps=STEPS, torch=torch.__version__,
                spread=spread, how=HOW)
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def rates(make_sched, steps, lr):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def multistep(base_lr, milestones, gamma, steps):
    return rates(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones, gamma), steps,
                 base_lr)


def warmup_cosine(base_lr, min_lr, warmup, total, steps):
    cos = rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total, min_lr), steps,
                base_lr)
    return [c * (min(1.0, (s + 1) / warmup) if warmup else 1.0) for s, c in enumerate(cos)]


def schedules(out):
    steps = 40
    ms = dict(base_lr=0.1, milestones=[10, 25], gamma=0.2)
    wc = dict(base_lr=0.1, min_lr=0.01, warmup_steps=8, total_steps=30)
    ms_lr = multistep(ms["base_lr"], ms["milestones"], ms["gamma"], steps)
    # Within the run only: torch's CosineAnnealingLR is periodic past T_max, deda's stays at
    # min_lr (training never goes past total_steps).
    wc_steps = wc["total_steps"] + 1
    wc_args = lambda c: (c["base_lr"], c["min_lr"], c["warmup_steps"], c["total_steps"], wc_steps)
    wc_lr = warmup_cosine(*wc_args(wc))
    diff = lambda a, b: max(abs(x - y) for x, y in zip(a, b))
    ms_sens = {
        "no_gamma": diff(ms_lr, multistep(ms["base_lr"], ms["milestones"], 1.0, steps)),
        "no_second_milestone": diff(ms_lr, multistep(ms["base_lr"], ms["milestones"][:1],
                                                     ms["gamma"], steps)),
        "milestones_one_late": diff(ms_lr, multistep(ms["base_lr"], [m + 1 for m in ms["milestones"]],
                                                     ms["gamma"], steps)),
    }
    wc_sens = {
        "no_min_lr": diff(wc_lr, warmup_cosine(*wc_args(dict(wc, min_lr=0.0)))),
        "no_warmup": diff(wc_lr, warmup_cosine(*wc_args(dict(wc, warmup_steps=0)))),
        "total_steps_plus_one": diff(wc_lr, warmup_cosine(*wc_args(dict(wc, total_steps=31)))),
    }
    res = {
        "torch": torch.__version__,
        "spread": 0.0,
        "how": "rates are float64 scalars computed by torch's schedulers; compared to 1e-12",
        "multistep": dict(ms, steps=steps, lr=ms_lr, sens=ms_sens),
        "warmup_cosine": dict(wc, steps=wc_steps, lr=wc_lr, sens=wc_sens),
    }
    print("schedules: sensitivities", ms_sens, wc_sens)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "schedules.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--adamw", default="crates/sd/tests/fixtures/adamw")
    ap.add_argument("--schedules", default="crates/train/tests/fixtures/schedules")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    adamw(args.adamw)
    schedules(args.schedules)


if __name__ == "__main__":
    main()
