#!/usr/bin/env python3
"""Parity fixture for deda-train's Co-Mixup graph cut: the reference calls
`gco.cut_grid_graph(unary, pairwise, cost_v, cost_h, algorithm='swap')` (gco-wrapper) on each
output's block grid; deda solves the same problems with its own alpha-beta swap.

Pinned versions: python 3.11, numpy 2.4.6, gco-wrapper==3.0.8, safetensors 0.8.0.
(gco-wrapper 3.0.8 still uses the removed aliases `np.int`, `np.float`; this script restores them before import.)

Regenerate (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_comixup_fixture.py [--out crates/train/tests/fixtures/comixup_gco]

Writes problems.safetensors with, for each problem k:
  unary.k     (H, W, L) float32 unary costs, as Co-Mixup builds them (-saliency share + penalty)
  pairwise.k  (L, L) float32 label costs: Potts, with 0.25 between a half-half label and its inputs
  beta.k      (1,) float32 the edge weight (beta / blocks)
  labels.k    (H, W) int64 gco's swap labeling
  energy.k    (1,) float64 the energy of gco's labeling, computed here (reference side) with the
              edge weight gco really uses (beta.k truncated to a multiple of 1e-3, see
              deda_train's gco_edge_weight)
and, for small problems solved exactly by enumerating every labeling:
  exact.unary.k, exact.pairwise.k, exact.beta.k   as above
  exact.labels.k   (H, W) int64 the global optimum, which gco's swap also finds (checked here)
  exact.energy.k   (1,) float64 its energy; exact.gap.k (1,) float64 the second-best energy minus
                   it: every kept problem has gap > 1e-3, i.e. a unique optimum, so the Rust test
                   asserts the same labeling.
Energies are compared in the Rust test with gco's integer scaling (edge weight truncated to 1e-3).
"""
import argparse
import itertools
import math
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


def edge_weight(b):
    """gco-wrapper's integer edge weight int(w * 1000) / 1000 (w float32 as in numpy)."""
    return math.trunc(float(np.float32(b) * np.float32(1000.0))) / 1000.0


def edges(h, w):
    return [(p, p + 1) for p in range(h * w) if (p + 1) % w] + \
        [(p, p + w) for p in range(h * w - w)]


def energies(unary, pw, b, labelings):
    """Energy of each labeling (rows of `labelings`, row-major blocks), float64."""
    h, w, _ = unary.shape
    u = unary.reshape(h * w, -1).astype(np.float64)
    e = u[np.arange(h * w)[None, :], labelings].sum(1)
    for p, q in edges(h, w):
        e = e + edge_weight(b) * pw.astype(np.float64)[labelings[:, p], labelings[:, q]]
    return e


def exact_problems(rng, tensors):
    cases = [((3, 3), 3, [], 0.32), ((4, 4), 2, [], 0.32), ((3, 4), 2, [(0, 1)], 0.32),
             ((3, 3), 2, [(0, 1)], 1.0), ((4, 3), 3, [], 0.5), ((2, 4), 4, [], 0.32)]
    kept = 0
    for (h, w), n_input, extras, beta in cases:
        for _attempt in range(20):
            sal = rng.random((n_input, h, w)) ** 3
            cost = -(sal / sal.reshape(n_input, -1).sum(1)[:, None, None])
            cost += rng.random((n_input, 1, 1)) * 0.02
            unary = cost.transpose(1, 2, 0)
            adds = [unary[:, :, list(p)].mean(-1, keepdims=True) - 5e-4 for p in extras]
            unary = np.ascontiguousarray(np.concatenate([unary] + adds, -1).astype(np.float32))
            pw = half_pairwise(n_input, extras)
            b = np.float32(beta / (h * w))
            labels = unary.shape[-1]
            all_l = np.array(list(itertools.product(range(labels), repeat=h * w)), dtype=np.int64)
            e = energies(unary, pw, b, all_l)
            order = np.argsort(e, kind="stable")
            best, gap = all_l[order[0]], float(e[order[1]] - e[order[0]])
            cv = b * np.ones((h - 1, w), dtype=np.float32)
            ch = b * np.ones((h, w - 1), dtype=np.float32)
            g = np.asarray(gco.cut_grid_graph(unary, pw, cv, ch, algorithm="swap")).reshape(-1)
            if gap > 1e-3 and (g == best).all() and (best != best[0]).any():
                k = kept
                tensors[f"exact.unary.{k}"] = unary
                tensors[f"exact.pairwise.{k}"] = pw
                tensors[f"exact.beta.{k}"] = np.array([b], dtype=np.float32)
                tensors[f"exact.labels.{k}"] = best.reshape(h, w)
                tensors[f"exact.energy.{k}"] = np.array([e[order[0]]], dtype=np.float64)
                tensors[f"exact.gap.{k}"] = np.array([gap], dtype=np.float64)
                print(f"exact {k}: {h}x{w}, {labels} labels, optimum {e[order[0]]:.6f}, "
                      f"gap {gap:.2e}, {len(set(best.tolist()))} labels used")
                kept += 1
                break
        else:
            raise SystemExit(f"no unique-optimum problem found for {(h, w, n_input, extras)}")


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
        e = energies(unary, pw, b, np.asarray(labels, dtype=np.int64).reshape(1, -1))
        tensors[f"energy.{k}"] = np.array([e[0]], dtype=np.float64)
    exact_problems(np.random.default_rng(1), tensors)
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "problems.safetensors"))
    print(f"wrote {len(cases)} problems to {args.out}")


if __name__ == "__main__":
    main()
