#!/usr/bin/env python3
"""Parity fixture for deda-train's multi-label loss (`deda_train::optim::multi_label`):
`torch.nn.functional.binary_cross_entropy_with_logits` (reduction "mean": over every class of
every sample) on a fixed problem, its value and its gradient with respect to the logits.

Pinned versions: python 3.x, torch==2.11.0 (CPU), numpy 2.x, safetensors.

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_bce_fixture.py [--out crates/train/tests/fixtures/bce]

The problem: logits of N=12 samples over C=20 classes (the VOC width) drawn N(0, 3), with a few
large ones (+-40, +-90) where a naive log(sigmoid) overflows; targets of three kinds, as a De-DA
VOC batch holds them: multi-hot real images (1 on every labelled class), one pasted CDP (1 on
its class) and two pasted CDPs weighted by area (e.g. 0.63 / 0.37), plus all-zero rows.

Writes bce.safetensors with:
  logits, targets   float32 (N, C)
  loss              float32 (1,) the mean loss in float32
  grad              float32 (N, C) d loss / d logits in float32
  loss64, grad64    float64 the same in float64
and spread.json: max |f32 - f64| / (1 + |f64|) over loss and grad (the reference's own float32
error), which sets the tolerance of the Rust test (4x, deda-parity).
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

N, C = 12, 20


def problem():
    rng = np.random.default_rng(20261206)
    logits = rng.normal(0.0, 3.0, (N, C))
    logits[0, 0], logits[0, 1], logits[1, 2], logits[1, 3] = 40.0, -40.0, 90.0, -90.0
    targets = np.zeros((N, C))
    for i in range(4):  # real multi-hot images with 1 to 3 labels
        for c in rng.choice(C, size=1 + i % 3, replace=False):
            targets[i, c] = 1.0
    for i in range(4, 7):  # one pasted CDP
        targets[i, rng.integers(C)] = 1.0
    for i in range(7, 10):  # two pasted CDPs, area-weighted
        a, b = rng.choice(C, size=2, replace=False)
        w = rng.uniform(0.2, 0.8)
        targets[i, a], targets[i, b] = w, 1.0 - w
    targets[1, 2], targets[1, 3] = 1.0, 0.0  # the extreme logits: right and wrong
    return logits.astype(np.float32), targets.astype(np.float32)


def run(logits, targets, dtype):
    z = torch.tensor(logits, dtype=dtype, requires_grad=True)
    t = torch.tensor(targets, dtype=dtype)
    loss = F.binary_cross_entropy_with_logits(z, t, reduction="mean")
    loss.backward()
    return loss.detach().numpy().reshape(1), z.grad.numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/train/tests/fixtures/bce")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    logits, targets = problem()
    loss32, grad32 = run(logits, targets, torch.float32)
    loss64, grad64 = run(logits, targets, torch.float64)
    spread = max(
        float(np.max(np.abs(loss32.astype(np.float64) - loss64) / (1 + np.abs(loss64)))),
        float(np.max(np.abs(grad32.astype(np.float64) - grad64) / (1 + np.abs(grad64)))),
    )
    save_file(
        {
            "logits": logits,
            "targets": targets,
            "loss": loss32.astype(np.float32),
            "grad": grad32.astype(np.float32),
            "loss64": loss64.astype(np.float64),
            "grad64": grad64.astype(np.float64),
        },
        os.path.join(args.out, "bce.safetensors"),
    )
    with open(os.path.join(args.out, "spread.json"), "w") as f:
        json.dump(
            {
                "spread": spread,
                "how": "binary_cross_entropy_with_logits float32 vs float64, loss and grad, "
                "max |d| / (1 + |f64|)",
            },
            f,
            indent=1,
        )
        f.write("\n")
    print(f"loss {loss64[0]:.9f} (f32 {loss32[0]:.9f}), spread {spread:.3e}")


if __name__ == "__main__":
    main()
