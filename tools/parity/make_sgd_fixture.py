#!/usr/bin/env python3
"""Parity fixture for deda-train's SGD (the optimiser of `TrainStep`): `torch.optim.SGD` with
momentum, Nesterov and weight decay on a fixed, sensitive problem.

Pinned versions: python 3.x, torch==2.11.0 (CPU), numpy 2.x, safetensors.

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_sgd_fixture.py [--out crates/train/tests/fixtures/sgd]

The problem: a two-layer MLP (fc1: 6 -> 5, tanh, fc2: 5 -> 4) trained for STEPS steps with the
soft-label cross-entropy mean(-sum t * log_softmax(z)), one fixed batch per step, SGD
lr 0.1 (x0.5 from step MILESTONE on, like deda's multi-step schedule stepped per iteration),
momentum 0.9, Nesterov, weight decay 0.05, dampening 0. The rates are large on purpose: dropping
weight decay, Nesterov or momentum moves the final parameters by 1e-3 or more (printed below and
stored as sens.*), while the enforced tolerance is 1e-6.

Writes sgd.safetensors with:
  init.<param>    float32 initial parameters (fc1.weight, fc1.bias, fc2.weight, fc2.bias)
  x.k, t.k        float32 batch k (8 x 6) and its target distributions (8 x 4)
  loss            float64 (STEPS,) loss of each step, before its update
  lr              float64 (STEPS,) learning rate of each step
  after.<param>   float32 parameters after the last step
  spread          float64 (1,) max |f32 - f64| / (1 + |f64|) over the final parameters: the
                  reference's own float32 error
  sens.<variant>  float64 (1,) max |param - param(variant)| for variants no_weight_decay,
                  no_nesterov, no_momentum
"""
import argparse
import os

import numpy as np
import torch
from safetensors.numpy import save_file

STEPS = 8
MILESTONE = 5
BASE_LR = 0.1
GAMMA = 0.5
MOMENTUM = 0.9
WEIGHT_DECAY = 0.05
BATCH, IN, HIDDEN, OUT = 8, 6, 5, 4
NAMES = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def problem():
    rng = np.random.default_rng(20240613)
    init = {
        "fc1.weight": rng.normal(0, 0.5, (HIDDEN, IN)),
        "fc1.bias": rng.normal(0, 0.1, (HIDDEN,)),
        "fc2.weight": rng.normal(0, 0.5, (OUT, HIDDEN)),
        "fc2.bias": rng.normal(0, 0.1, (OUT,)),
    }
    batches = []
    for _ in range(STEPS):
        x = rng.normal(0, 1, (BATCH, IN))
        logits = rng.normal(0, 2, (BATCH, OUT))
        t = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        batches.append((x.astype(np.float32), t.astype(np.float32)))
    return {k: v.astype(np.float32) for k, v in init.items()}, batches


def lr_at(step):
    return BASE_LR * (GAMMA if step >= MILESTONE else 1.0)


def run(init, batches, dtype, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY):
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in init.items()}
    opt = torch.optim.SGD(
        [params[k] for k in NAMES],
        lr=BASE_LR,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        dampening=0,
        foreach=False,
    )
    losses = []
    for k, (x, t) in enumerate(batches):
        for g in opt.param_groups:
            g["lr"] = lr_at(k)
        x, t = torch.tensor(x, dtype=dtype), torch.tensor(t, dtype=dtype)
        h = torch.tanh(x @ params["fc1.weight"].T + params["fc1.bias"])
        z = h @ params["fc2.weight"].T + params["fc2.bias"]
        loss = (-(t * torch.log_softmax(z, dim=1)).sum(dim=1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {k: p.detach().numpy().copy() for k, p in params.items()}, losses


def max_diff(a, b):
    return max(float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) for k in NAMES)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/train/tests/fixtures/sgd")
    a = ap.parse_args()
    torch.set_num_threads(1)
    init, batches = problem()
    after, losses = run(init, batches, torch.float32)
    after64, _ = run(init, batches, torch.float64)
    spread = max(
        float((np.abs(after[k].astype(np.float64) - after64[k]) / (1 + np.abs(after64[k]))).max())
        for k in NAMES
    )
    sens = {
        "no_weight_decay": max_diff(after, run(init, batches, torch.float32, weight_decay=0.0)[0]),
        "no_nesterov": max_diff(after, run(init, batches, torch.float32, nesterov=False)[0]),
        "no_momentum": max_diff(
            after, run(init, batches, torch.float32, momentum=0.0, nesterov=False)[0]
        ),
    }
    print(f"torch {torch.__version__}; f32 vs f64 spread {spread:.3e}")
    for k, v in sens.items():
        print(f"  dropping {k[3:]}: final parameters move by {v:.3e}")
    out = {}
    for k in NAMES:
        out[f"init.{k}"] = init[k]
        out[f"after.{k}"] = after[k]
    for i, (x, t) in enumerate(batches):
        out[f"x.{i}"] = x
        out[f"t.{i}"] = t
    out["loss"] = np.array(losses, dtype=np.float64)
    out["lr"] = np.array([lr_at(k) for k in range(STEPS)], dtype=np.float64)
    out["spread"] = np.array([spread], dtype=np.float64)
    for k, v in sens.items():
        out[f"sens.{k}"] = np.array([v], dtype=np.float64)
    os.makedirs(a.out, exist_ok=True)
    save_file(out, os.path.join(a.out, "sgd.safetensors"))
    print(f"wrote {os.path.join(a.out, 'sgd.safetensors')}")


if __name__ == "__main__":
    main()
