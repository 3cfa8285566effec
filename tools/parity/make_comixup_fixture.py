#!/usr/bin/env python3
"""Parity fixture for deda-train's Co-Mixup graph cut: the reference calls
`gco.cut_grid_graph(unary, pairwise, cost_v, cost_h, algorithm='swap')` (gco-wrapper) on each
output's block grid; deda solves the same problems with its own alpha-beta swap.

Pinned versions: python 3.x, numpy 2.x, gco-wrapper==3.0.8, safetensors.
(gco-wrapper 3.0.8 still uses the removed aliases `np.int`, `np.float`; this script restores them before import.)

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_comixup_fixture.py [--out crates/train/tests/fixtures/comixup_gco]

Writes problems.safetensors with, for each problem k:
  unary.k     (H, W, L) float32 unary costs, as Co-Mixup builds them (-saliency share + penalty)
  pairwise.k  (L, L) float32 label costs: Potts, with 0.25 between a half-half label and its inputs
  beta.k      (1,) float32 the edge weight (beta / blocks)
  labels.k    (H, W) int64 gco's swap labeling
Energies are compared in the Rust test with gco's integer scaling (edge weight truncated to 1e-3).
"""
import argparse
import os

import numpy as np

np.int, np.float = int, float  # gco-wrapper 3.0.8 predates NumPy 2
import gco  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402


def half_pairwise(n_input, extras):
    """Potts over n_input + len(extras) labels, 0.25 between each extra label and its inputs."""
    labels = n_input + len(extras)
    pw = np.ones((labels, labels), dtype=np.float32) - np.eye(labels, dtype=np.float32)
    for r, pair in enumerate(extras):
        for j in pair:
            pw[n_input + r, j] = 0.25
            pw[j, n_input + r] = 0.25
    return pw


def problem(rng, side, n_input, extras, beta):
    sal = rng.random((n_input, side, side)) ** 3
    cost = -(sal / sal.reshape(n_input, -1).sum(1)[:, None, None])
    cost += rng.random((n_input, 1, 1)) * 0.02  # a modular penalty per input
    unary = cost.transpose(1, 2, 0)
    adds = [unary[:, :, list(p)].mean(-1, keepdims=True) - 5e-4 for p in extras]
    unary = np.concatenate([unary] + adds, axis=-1).astype(np.float32)
    return np.ascontiguousarray(unary), half_pairwise(n_input, extras), np.float32(beta / side / side)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/train/tests/fixtures/comixup_gco")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cases = [
        (4, 3, [], 0.32), (4, 5, [(1, 3)], 0.32), (8, 6, [(0, 2), (0, 4), (2, 4)], 0.32),
        (8, 4, [], 4.0), (16, 5, [], 0.32), (16, 6, [(1, 2), (1, 5), (2, 5)], 2.0),
        (8, 3, [(0, 1)], 8.0), (4, 8, [], 1.0),
    ]
    tensors = {}
    for k, (side, n_input, extras, beta) in enumerate(cases):
        unary, pw, b = problem(rng, side, n_input, extras, beta)
        cv = b * np.ones((side - 1, side), dtype=np.float32)
        ch = b * np.ones((side, side - 1), dtype=np.float32)
        labels = gco.cut_grid_graph(unary, pw, cv, ch, algorithm="swap")
        tensors[f"unary.{k}"] = unary
        tensors[f"pairwise.{k}"] = pw
        tensors[f"beta.{k}"] = np.array([b], dtype=np.float32)
        tensors[f"labels.{k}"] = np.asarray(labels, dtype=np.int64).reshape(side, side)
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "problems.safetensors"))
    print(f"wrote {len(cases)} problems to {args.out}")


if __name__ == "__main__":
    main()
